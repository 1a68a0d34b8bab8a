package loader

import (
	"errors"
	"strings"
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

func TestChooseWeights(t *testing.T) {
	good := &model.Int8Copy{File: "model.int8.pt", Top1Agreement: 0.95, RowsChecked: 128}
	poor := &model.Int8Copy{File: "model.int8.pt", Top1Agreement: 0.5, RowsChecked: 128}
	avx2 := torch.Runtime{Int8AVX2: true}
	cases := []struct {
		name   string
		int8   *model.Int8Copy
		dtype  config.DType
		device config.Device
		rt     torch.Runtime
		file   string
		why    string
	}{
		{"auto on a CPU", good, config.DTypeAuto, config.DeviceCPU, avx2, "model.int8.pt", "agrees with float32 on 95.0% of 128"},
		{"empty dtype is auto", good, "", config.DeviceCPU, avx2, "model.int8.pt", "AVX2"},
		{"no copy", nil, config.DTypeAuto, config.DeviceCPU, avx2, "model.pt", "no int8 copy"},
		{"float asked for", good, config.DTypeFloat32, config.DeviceCPU, avx2, "model.pt", `"float32"`},
		{"GPU", good, config.DTypeAuto, "cuda", avx2, "model.pt", "CPU only"},
		{"no AVX2", good, config.DTypeAuto, config.DeviceCPU, torch.Runtime{}, "model.pt", "AVX2"},
		{"poor agreement", poor, config.DTypeAuto, config.DeviceCPU, avx2, "model.pt", "only 50.0%"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := chooseWeights(model.Meta{Int8: c.int8}, c.dtype, c.device, c.rt)
			if got.File != c.file || got.Int8 != (c.file != model.WeightsFile) || !strings.Contains(got.Why, c.why) {
				t.Errorf("got %+v, want file %s and a reason mentioning %q", got, c.file, c.why)
			}
		})
	}
}
