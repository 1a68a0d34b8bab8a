package loader

import (
	"errors"
	"testing"

	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/model"
	"github.com/dialogbot/dialogbot/torch"
)

func TestInt8EngineHint(t *testing.T) {
	cases := []struct {
		quantize string
		avx2     bool
		warn     bool
	}{
		{"int8", false, true},
		{"int8", true, false},
		{"none", false, false},
		{"", false, false},
	}
	for _, c := range cases {
		hint := int8EngineHint(model.Meta{Quantize: c.quantize}, torch.Runtime{Int8AVX2: c.avx2})
		if (hint != "") != c.warn {
			t.Errorf("quantize %q, AVX2 %v: hint %q, want a hint: %v", c.quantize, c.avx2, hint, c.warn)
		}
	}
}

func TestDeviceForCPUOnlyModels(t *testing.T) {
	int8 := model.Meta{Quantize: "int8", CPUOnly: true}
	cases := []struct {
		meta      model.Meta
		requested config.Device
		want      config.Device
		err       bool
	}{
		{int8, "auto", "cpu", false},
		{int8, "", "cpu", false},
		{int8, "cpu", "cpu", false},
		{int8, "cuda", "", true},
		{int8, "cuda:1", "", true},
		{model.Meta{Quantize: "none"}, "auto", "auto", false},
		{model.Meta{Quantize: "none"}, "cuda", "cuda", false},
	}
	for _, c := range cases {
		got, err := deviceFor(c.meta, c.requested)
		if got != c.want || (err != nil) != c.err || (err != nil && !errors.Is(err, ErrCPUOnly)) {
			t.Errorf("deviceFor(%+v, %q) = %q, %v; want %q, error %v", c.meta, c.requested, got, err, c.want, c.err)
		}
	}
}
