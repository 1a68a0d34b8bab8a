package torch

/*
#cgo CFLAGS: -I${SRCDIR}/../cbridge
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include "cbridge.h"

// The bridge is opened with dlopen rather than linked, so the Go code builds
// and its tests run on machines without libtorch, and one binary runs with
// a CPU or a CUDA build of the bridge.
static struct {
	int32_t (*abi_version)(void);
	void (*free_error)(char *);
	char *(*cuda_device_count)(int32_t *);
	char *(*runtime_info)(cb_runtime *);
	char *(*gpu_memory)(int32_t, uint64_t *, uint64_t *);
	char *(*model_load)(const char *, const cb_model_options *, cb_model **);
	void (*model_free)(cb_model *);
	char *(*model_step)(cb_model *, int32_t, const int32_t *, const int32_t *, const int64_t *, int32_t,
	                    float *, int32_t *, float *);
	char *(*model_logits)(cb_model *, int32_t, const int32_t *, float *);
	char *(*model_set_length)(cb_model *, int32_t, int32_t);
	char *(*model_copy_slot)(cb_model *, int32_t, int32_t);
} fns;

#define LOAD(field, name) if ((*(void **)&fns.field = dlsym(lib, name)) == NULL) return "missing symbol " name;

static const char *bridge_open(const char *path) {
	void *lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (lib == NULL) return dlerror();
	LOAD(abi_version, "cb_abi_version")
	LOAD(free_error, "cb_free_error")
	LOAD(cuda_device_count, "cb_cuda_device_count")
	LOAD(runtime_info, "cb_runtime_info")
	LOAD(gpu_memory, "cb_gpu_memory")
	LOAD(model_load, "cb_model_load")
	LOAD(model_free, "cb_model_free")
	LOAD(model_step, "cb_model_step")
	LOAD(model_logits, "cb_model_logits")
	LOAD(model_set_length, "cb_model_set_length")
	LOAD(model_copy_slot, "cb_model_copy_slot")
	return NULL;
}

int32_t b_abi_version(void) { return fns.abi_version(); }
void b_free_error(char *e) { fns.free_error(e); }
char *b_cuda_device_count(int32_t *n) { return fns.cuda_device_count(n); }
char *b_runtime_info(cb_runtime *out) { return fns.runtime_info(out); }
char *b_gpu_memory(int32_t d, uint64_t *used, uint64_t *total) { return fns.gpu_memory(d, used, total); }
char *b_model_load(const char *p, const cb_model_options *o, cb_model **m) { return fns.model_load(p, o, m); }
void b_model_free(cb_model *m) { fns.model_free(m); }
char *b_model_step(cb_model *m, int32_t n, const int32_t *slots, const int32_t *nt, const int64_t *tok,
                          int32_t k, float *vals, int32_t *ids, float *lse) {
	return fns.model_step(m, n, slots, nt, tok, k, vals, ids, lse);
}
char *b_model_logits(cb_model *m, int32_t n, const int32_t *rows, float *out) {
	return fns.model_logits(m, n, rows, out);
}
char *b_model_set_length(cb_model *m, int32_t s, int32_t l) { return fns.model_set_length(m, s, l); }
char *b_model_copy_slot(cb_model *m, int32_t s, int32_t d) { return fns.model_copy_slot(m, s, d); }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"
)

// ErrNoBridge is wrapped by every error that comes from not finding or not
// loading libcbridge.so.
var ErrNoBridge = errors.New("cannot load the libtorch bridge (libcbridge.so)")

const installHint = "build it with `make bridge` (needs libtorch: apt-get install libtorch-dev libopenblas0-openmp), " +
	"or point DIALOGBOT_CBRIDGE at it"

var (
	openOnce sync.Once
	openErr  error
	openPath string
)

// bridgeCandidates lists where libcbridge.so may be: $DIALOGBOT_CBRIDGE,
// beside the executable (bin/), ../lib from it, then the loader's search path.
func bridgeCandidates() []string {
	var paths []string
	if p := os.Getenv("DIALOGBOT_CBRIDGE"); p != "" {
		return []string{p}
	}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		paths = append(paths, filepath.Join(dir, "libcbridge.so"), filepath.Join(dir, "..", "lib", "libcbridge.so"))
	}
	return append(paths, "libcbridge.so")
}

// ompWaitPolicy is OMP_WAIT_POLICY as OpenMP read it when the bridge (and
// with it libtorch's OpenMP runtime) was loaded.
var ompWaitPolicy string

// setWaitPolicy makes OpenMP threads sleep, not spin, between parallel
// regions unless the user chose otherwise. A decode step runs hundreds of
// short regions; spinning, a thread holds its core while the thread it
// waits for is preempted by another process, and each region then waits
// for a time slice. On the 2-core dev VM with other work running, nano-ru
// at 32 chats made 117 tokens/s with libgomp's default and 820 with
// PASSIVE (docs/cpu.md). It must happen before dlopen: libgomp reads the
// variable once, when it is loaded.
func setWaitPolicy() {
	if v, ok := os.LookupEnv("OMP_WAIT_POLICY"); ok {
		ompWaitPolicy = v
		return
	}
	if err := os.Setenv("OMP_WAIT_POLICY", "PASSIVE"); err == nil {
		ompWaitPolicy = "PASSIVE"
	}
}

// openBridge loads the bridge once per process.
func openBridge() error {
	openOnce.Do(func() {
		setWaitPolicy()
		var tried []string
		for _, p := range bridgeCandidates() {
			if strings.ContainsRune(p, '/') {
				if _, err := os.Stat(p); err != nil {
					tried = append(tried, p+" (absent)")
					continue
				}
			}
			cp := C.CString(p)
			msg := C.bridge_open(cp)
			C.free(unsafe.Pointer(cp))
			if msg == nil {
				openPath = p
				break
			}
			tried = append(tried, p+": "+C.GoString(msg))
		}
		if openPath == "" {
			openErr = fmt.Errorf("%w: tried %s; %s", ErrNoBridge, strings.Join(tried, "; "), installHint)
			return
		}
		if v := int(C.b_abi_version()); v != C.CB_ABI_VERSION {
			openErr = fmt.Errorf("%w: %s has ABI version %d, want %d; rebuild it with `make bridge`",
				ErrNoBridge, openPath, v, C.CB_ABI_VERSION)
		}
	})
	return openErr
}

// Available reports whether the bridge can be loaded, and why not.
func Available() error { return openBridge() }

// BridgePath is the file the bridge was loaded from ("" before it is).
func BridgePath() string { return openPath }

// status turns a bridge result into a Go error and frees the C string.
func status(msg *C.char) error {
	if msg == nil {
		return nil
	}
	err := errors.New(C.GoString(msg))
	C.b_free_error(msg)
	return err
}
