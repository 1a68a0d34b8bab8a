package torch

/*
#include <stdlib.h>
#include <stdint.h>
char *b_cuda_device_count(int32_t *n);
char *b_runtime_info(char *buf, size_t cap);
char *b_gpu_memory(int32_t d, uint64_t *used, uint64_t *total);
*/
import "C"

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unsafe"
)

// CUDADevices is how many CUDA devices libtorch can use (0 on a CPU build).
func CUDADevices() (int, error) {
	if err := openBridge(); err != nil {
		return 0, err
	}
	var n C.int32_t
	if err := status(C.b_cuda_device_count(&n)); err != nil {
		return 0, fmt.Errorf("torch: %w", err)
	}
	return int(n), nil
}

var devicePattern = regexp.MustCompile(`^(auto|cpu|cuda(:\d+)?)$`)

// ResolveDevice checks a device name; "auto" (or "") becomes "cuda" when a
// CUDA device is present, else "cpu". Asking for CUDA without one is an error.
func ResolveDevice(name string) (string, error) {
	if name == "" {
		name = "auto"
	}
	if !devicePattern.MatchString(name) {
		return "", fmt.Errorf("torch: unknown device %q (want auto, cpu, cuda or cuda:N)", name)
	}
	if name == "cpu" {
		return name, nil
	}
	n, err := CUDADevices()
	if err != nil {
		return "", err
	}
	if name == "auto" {
		if n > 0 {
			return "cuda", nil
		}
		return "cpu", nil
	}
	idx := 0
	if i := strings.IndexByte(name, ':'); i >= 0 {
		idx, _ = strconv.Atoi(name[i+1:])
	}
	if idx >= n {
		return "", fmt.Errorf("torch: device %q asked for, but %d CUDA device(s) are available", name, n)
	}
	return name, nil
}

// RuntimeInfo describes libtorch (version, parallel backend, threads) and
// the BLAS library the process loaded: Debian's libtorch uses whatever
// libblas.so.3 points at, and the reference BLAS is about 8x slower than
// OpenBLAS, so the bot's start-up log and `bench` say which one it is.
func RuntimeInfo() (string, error) {
	if err := openBridge(); err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	if err := status(C.b_runtime_info((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))); err != nil {
		return "", wrap(err)
	}
	info := C.GoString((*C.char)(unsafe.Pointer(&buf[0])))
	info = strings.Join(strings.Fields(info), " ")
	return fmt.Sprintf("%s; BLAS: %s; bridge: %s", info, loadedBLAS(), openPath), nil
}

var blasPattern = regexp.MustCompile(`lib(openblas|blas|mkl_rt|mkl_core|blis|cublas)[^/]*\.so`)

// loadedBLAS names the BLAS libraries mapped into this process, resolving
// libblas.so.3 through its symlinks (Debian's alternatives).
func loadedBLAS() string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	seen := map[string]bool{}
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		path := fields[len(fields)-1]
		if !blasPattern.MatchString(filepath.Base(path)) || seen[path] {
			continue
		}
		seen[path] = true
		if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
			path = path + " -> " + real
		}
		names = append(names, path)
	}
	if len(names) == 0 {
		return "none loaded"
	}
	return strings.Join(names, ", ")
}

// GPUMemory reports bytes in use and in total on a CUDA device (both 0 on
// a CPU-only machine).
func GPUMemory(device int) (used, total uint64, err error) {
	if err := openBridge(); err != nil {
		return 0, 0, err
	}
	var u, t C.uint64_t
	if err := status(C.b_gpu_memory(C.int32_t(device), &u, &t)); err != nil {
		return 0, 0, wrap(err)
	}
	return uint64(u), uint64(t), nil
}
