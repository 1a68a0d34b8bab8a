package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Device is where the model runs: "auto" (CUDA when the bridge has it and a
// GPU is present, else the CPU), "cpu", "cuda" or "cuda:N". Every command
// parses it here, so they accept and refuse the same names.
type Device string

const (
	DeviceAuto Device = "auto"
	DeviceCPU  Device = "cpu"
	DeviceCUDA Device = "cuda"
)

// ParseDevice checks a device name from a config file or a flag.
func ParseDevice(s string) (Device, error) {
	d := Device(strings.TrimSpace(s))
	switch d {
	case DeviceAuto, DeviceCPU, DeviceCUDA:
		return d, nil
	}
	n, ok := strings.CutPrefix(string(d), "cuda:")
	if i, err := strconv.Atoi(n); ok && err == nil && i >= 0 && strconv.Itoa(i) == n {
		return d, nil
	}
	return "", fmt.Errorf("unknown device %q (want auto, cpu, cuda or cuda:N)", s)
}

// IsCUDA says whether the device is a GPU ("cuda" or "cuda:N").
func (d Device) IsCUDA() bool { return d == DeviceCUDA || strings.HasPrefix(string(d), "cuda:") }

// DType is the weights' type at run time: "auto" (as exported, or the
// fastest exact-enough copy the model folder holds), "float32", "float16" or
// "bfloat16".
type DType string

const (
	DTypeAuto     DType = "auto"
	DTypeFloat32  DType = "float32"
	DTypeFloat16  DType = "float16"
	DTypeBFloat16 DType = "bfloat16"
)

// ParseDType checks a dtype name; "" means auto.
func ParseDType(s string) (DType, error) {
	switch d := DType(strings.TrimSpace(s)); d {
	case "":
		return DTypeAuto, nil
	case DTypeAuto, DTypeFloat32, DTypeFloat16, DTypeBFloat16:
		return d, nil
	}
	return "", fmt.Errorf("unknown dtype %q (want auto, float32, float16 or bfloat16)", s)
}
