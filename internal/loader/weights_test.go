package loader

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/internal/testmodel"
	"github.com/dialogbot/dialogbot/model"
)

// TestOpenPicksTheInt8CopyOnACPU loads nano-ru exported with --quantize
// both: dtype auto takes the int8 copy and says why in the log; float32
// takes model.pt.
func TestOpenPicksTheInt8CopyOnACPU(t *testing.T) {
	testmodel.RequireBridge(t)
	dir := testmodel.Export(t, "nano-ru", "--quantize", "both")
	cases := []struct {
		dtype    config.DType
		file     string
		quantize string
	}{
		{config.DTypeAuto, "model.int8.pt", "int8"},
		{config.DTypeFloat32, model.WeightsFile, "none"},
	}
	for _, c := range cases {
		t.Run(string(c.dtype), func(t *testing.T) {
			var logs bytes.Buffer
			m, err := Open(Options{Dir: dir, Device: config.DeviceCPU, Dtype: c.dtype, Slots: 1}, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.WeightsFile != c.file || m.Meta.Quantize != c.quantize {
				t.Errorf("loaded %s (quantize %q), want %s (%q); why: %s", m.WeightsFile, m.Meta.Quantize, c.file, c.quantize, m.WeightsWhy)
			}
			if !strings.Contains(logs.String(), "file="+c.file) || !strings.Contains(logs.String(), "why=") {
				t.Errorf("the start-up log does not say which weights and why:\n%s", logs.String())
			}
		})
	}
}
