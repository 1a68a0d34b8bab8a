package loader

import (
	"errors"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/model"
)

func TestInt8EngineHint(t *testing.T) {
	const onednn = "torch 1.13.0; intra-op threads 2; quantized engine ONEDNN; ATen/Parallel: ..."
	const x86 = "torch 2.11.0; intra-op threads 2; quantized engine X86; ATen/Parallel: ..."
	cases := []struct {
		quantize, info string
		warn           bool
	}{
		{"int8", onednn, true},
		{"int8", x86, false},
		{"int8", strings.Replace(x86, "X86", "FBGEMM", 1), false},
		{"none", onednn, false},
		{"", onednn, false},
	}
	for _, c := range cases {
		hint := int8EngineHint(model.Meta{Quantize: c.quantize}, c.info)
		if (hint != "") != c.warn {
			t.Errorf("quantize %q on %q: hint %q, want a hint: %v", c.quantize, c.info, hint, c.warn)
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
