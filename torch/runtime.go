package torch

/*
#include <stdlib.h>
#include <stdint.h>
char *b_cuda_device_count(int32_t *n);
#include "cbridge.h"
char *b_runtime_info(cb_runtime *out);
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

// Runtime is what libtorch runs with, as the bridge reports it, plus the
// BLAS libraries this process loaded: Debian's libtorch uses whatever
// libblas.so.3 points at, and the reference BLAS is about 8x slower than
// OpenBLAS, so the bot's start-up log and `bench` say which one it is.
type Runtime struct {
	TorchVersion     string   // "1.13.0"
	IntraOpThreads   int      // of the thread that asked (OpenMP keeps it per thread)
	InterOpThreads   int      //
	ParallelBackend  string   // "OpenMP", "native thread pool", "TBB"
	QuantizedEngine  string   // the engine in use ("ONEDNN", "X86", "FBGEMM", ...)
	QuantizedEngines []string // all the engines this libtorch has
	CUDADevices      int      //
	OneDNN           bool     // built with oneDNN (MKL-DNN)
	Int8AVX2         bool     // the int8 kernel's AVX2 path runs on this CPU
	OMPWaitPolicy    string   // OMP_WAIT_POLICY as the process started OpenMP with ("" : unset)
	BLAS             []string // BLAS libraries mapped, "path -> target" for symlinks
	Bridge           string   // the libcbridge.so loaded
}

// String is the one-line form the start-up log and bench print.
func (r Runtime) String() string {
	blas := "none loaded"
	if len(r.BLAS) > 0 {
		blas = strings.Join(r.BLAS, ", ")
	}
	wait := r.OMPWaitPolicy
	if wait == "" {
		wait = "unset"
	}
	return fmt.Sprintf("torch %s; %s, %d intra-op threads (OMP_WAIT_POLICY %s); quantized engine %s (of %s); "+
		"int8 kernel AVX2 %v; CUDA devices %d; BLAS: %s; bridge: %s",
		r.TorchVersion, r.ParallelBackend, r.IntraOpThreads, wait, r.QuantizedEngine,
		strings.Join(r.QuantizedEngines, ","), r.Int8AVX2, r.CUDADevices, blas, r.Bridge)
}

// RuntimeInfo reports libtorch's runtime as seen from the calling thread.
func RuntimeInfo() (Runtime, error) {
	if err := openBridge(); err != nil {
		return Runtime{}, err
	}
	var c C.cb_runtime
	if err := status(C.b_runtime_info(&c)); err != nil {
		return Runtime{}, wrap(err)
	}
	r := Runtime{
		TorchVersion:    fmt.Sprintf("%d.%d.%d", c.torch_major, c.torch_minor, c.torch_patch),
		IntraOpThreads:  int(c.intra_op_threads),
		InterOpThreads:  int(c.inter_op_threads),
		ParallelBackend: C.GoString(&c.parallel_backend[0]),
		QuantizedEngine: C.GoString(&c.quantized_engine[0]),
		CUDADevices:     int(c.cuda_devices),
		OneDNN:          c.mkldnn != 0,
		Int8AVX2:        c.int8_avx2 != 0,
		OMPWaitPolicy:   ompWaitPolicy,
		BLAS:            loadedBLAS(),
		Bridge:          openPath,
	}
	if engines := C.GoString(&c.quantized_engines[0]); engines != "" {
		r.QuantizedEngines = strings.Split(engines, ",")
	}
	return r, nil
}

var blasPattern = regexp.MustCompile(`lib(openblas|blas|mkl_rt|mkl_core|blis|cublas)[^/]*\.so`)

// loadedBLAS names the BLAS libraries mapped into this process, resolving
// libblas.so.3 through its symlinks (Debian's alternatives).
func loadedBLAS() []string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return []string{"unknown (" + err.Error() + ")"}
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
	return names
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
