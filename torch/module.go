package torch

/*
#include <stdlib.h>
#include "cbridge.h"
char *b_model_load(const char *p, const cb_model_options *o, cb_model **m);
void b_model_free(cb_model *m);
char *b_model_step(cb_model *m, int32_t n, const int32_t *slots, const int32_t *nt, const int64_t *tok,
                   int32_t k, float *vals, int32_t *ids, float *lse);
char *b_model_logits(cb_model *m, int32_t n, const int32_t *rows, float *out);
char *b_model_set_length(cb_model *m, int32_t s, int32_t l);
char *b_model_copy_slot(cb_model *m, int32_t s, int32_t d);
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sync"
	"unsafe"
)

// Shape is the architecture of an exported model, from its dialogbot.json.
type Shape struct {
	Layers, Heads, HeadDim, Vocab, Positions int
}

// Options say how to load a model.
type Options struct {
	Path     string // the TorchScript file (model.pt)
	Shape    Shape
	Device   string // "auto", "cpu", "cuda" or "cuda:N"
	Dtype    string // "" (as exported), "float32", "float16", "bfloat16"
	Slots    int    // sequences whose KV cache is kept at once
	Capacity int    // tokens per sequence; 0 = the model's context
	// Threads for libtorch's CPU work (0: libtorch's default). Set on the
	// module's own thread: OpenMP keeps the count per thread.
	Threads int
}

// ErrClosed is returned by calls on a closed Module.
var ErrClosed = errors.New("torch: module is closed")

// Module is a loaded step model with its KV cache pool. Its methods may be
// called from any goroutine: they run on one locked OS thread (see worker).
// Call Close to free it; there is no finalizer.
type Module struct {
	w         *worker
	ptr       *C.cb_model // used on w's thread only; nil once freed
	opts      Options
	device    string
	closeOnce sync.Once
	closeErr  error
}

// Load loads a TorchScript step model exported by model/python/export.py.
func Load(o Options) (*Module, error) {
	if err := openBridge(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(o.Path); err != nil {
		return nil, fmt.Errorf("torch: model file: %w", err)
	}
	device, err := ResolveDevice(o.Device)
	if err != nil {
		return nil, err
	}
	if o.Capacity == 0 {
		o.Capacity = o.Shape.Positions
	}
	m := &Module{w: newWorker(), opts: o, device: device}
	err = m.w.do(func() error { return m.load(device) })
	if err != nil {
		m.w.stop()
		return nil, err
	}
	return m, nil
}

func (m *Module) load(device string) error {
	path, dev, dtype := C.CString(m.opts.Path), C.CString(device), C.CString(m.opts.Dtype)
	defer C.free(unsafe.Pointer(path))
	defer C.free(unsafe.Pointer(dev))
	defer C.free(unsafe.Pointer(dtype))
	s := m.opts.Shape
	copts := C.cb_model_options{
		n_layer: C.int32_t(s.Layers), n_head: C.int32_t(s.Heads), head_dim: C.int32_t(s.HeadDim),
		vocab_size: C.int32_t(s.Vocab), n_positions: C.int32_t(s.Positions),
		slots: C.int32_t(m.opts.Slots), capacity: C.int32_t(m.opts.Capacity), threads: C.int32_t(m.opts.Threads),
		device: dev, dtype: dtype,
	}
	if err := status(C.b_model_load(path, &copts, &m.ptr)); err != nil {
		return fmt.Errorf("torch: %w", explainLoadError(err))
	}
	return nil
}

// unknownOp finds the op TorchScript could not resolve in its load error.
var unknownOp = regexp.MustCompile(`Unknown builtin op: (dialogbot::\w+)`)

// explainLoadError turns TorchScript's many-line "Unknown builtin op"
// report for one of the bridge's own ops into one line that says what to
// do: the model was exported by a newer export.py than the bridge was
// built from.
func explainLoadError(err error) error {
	m := unknownOp.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	return fmt.Errorf("load model: it calls %s, which this bridge (%s) lacks: the model was exported by a newer "+
		"dialogbot than the bridge was built from; rebuild the bridge (make build), or export the model with "+
		"this checkout's model/python/export.py", m[1], BridgePath())
}

// Device is the device the model runs on ("cpu", "cuda", "cuda:1").
func (m *Module) Device() string { return m.device }

// Vocab is the number of logits per row.
func (m *Module) Vocab() int { return m.opts.Shape.Vocab }

// Slots is the number of sequences the cache holds.
func (m *Module) Slots() int { return m.opts.Slots }

// Capacity is the most tokens one slot holds.
func (m *Module) Capacity() int { return m.opts.Capacity }

// RuntimeInfo is RuntimeInfo as seen from the module's own thread, whose
// thread count is the one its steps use.
func (m *Module) RuntimeInfo() (Runtime, error) {
	var info Runtime
	err := m.w.do(func() error {
		var err error
		info, err = RuntimeInfo()
		return err
	})
	return info, err
}

// Close frees the model and its cache. It is safe to call more than once
// and while other calls are in flight: those already running finish, and
// every call after Close returns ErrClosed.
func (m *Module) Close() error {
	m.closeOnce.Do(func() {
		m.closeErr = m.w.do(func() error {
			C.b_model_free(m.ptr)
			m.ptr = nil
			return nil
		})
		m.w.stop()
	})
	return m.closeErr
}

// StepInput is one batched step: row i continues slot Slots[i] with
// NTokens[i] tokens, all rows' tokens concatenated in Tokens.
type StepInput struct {
	Slots   []int32
	NTokens []int32
	Tokens  []int64
}

// StepOutput receives, per row, the K best logits and their ids in
// descending order (K <= 0: the whole vocabulary in Logits) and the
// log-sum-exp of the row's logits. Buffers are reused between steps.
type StepOutput struct {
	K      int
	Logits []float32
	IDs    []int32
	LSE    []float32
}

// Step runs one forward pass for all rows in one bridge call.
func (m *Module) Step(in StepInput, out *StepOutput) error {
	n := len(in.Slots)
	if n == 0 || len(in.NTokens) != n {
		return fmt.Errorf("torch: step needs one token count per row (%d rows, %d counts)", n, len(in.NTokens))
	}
	if err := checkTokens(in); err != nil {
		return err
	}
	width := out.K
	if width <= 0 || width >= m.Vocab() {
		width = m.Vocab()
	}
	out.Logits = grow(out.Logits, n*width)
	out.IDs = growInt32(out.IDs, n*width)
	out.LSE = grow(out.LSE, n)
	return m.w.do(func() error {
		if m.ptr == nil {
			return ErrClosed
		}
		return wrap(status(C.b_model_step(m.ptr, C.int32_t(n),
			(*C.int32_t)(unsafe.Pointer(&in.Slots[0])), (*C.int32_t)(unsafe.Pointer(&in.NTokens[0])),
			(*C.int64_t)(unsafe.Pointer(&in.Tokens[0])), C.int32_t(out.K),
			(*C.float)(unsafe.Pointer(&out.Logits[0])), (*C.int32_t)(unsafe.Pointer(&out.IDs[0])),
			(*C.float)(unsafe.Pointer(&out.LSE[0])))))
	})
}

func checkTokens(in StepInput) error {
	total := 0
	for _, t := range in.NTokens {
		if t <= 0 {
			return errors.New("torch: every row needs at least one token")
		}
		total += int(t)
	}
	if total != len(in.Tokens) {
		return fmt.Errorf("torch: token counts add up to %d, but %d tokens given", total, len(in.Tokens))
	}
	return nil
}

// Logits copies the full logits of some rows of the last step into out
// (len(rows)*Vocab floats, reused when big enough).
func (m *Module) Logits(rows []int32, out []float32) ([]float32, error) {
	if len(rows) == 0 {
		return out[:0], nil
	}
	out = grow(out, len(rows)*m.Vocab())
	err := m.w.do(func() error {
		if m.ptr == nil {
			return ErrClosed
		}
		return wrap(status(C.b_model_logits(m.ptr, C.int32_t(len(rows)),
			(*C.int32_t)(unsafe.Pointer(&rows[0])), (*C.float)(unsafe.Pointer(&out[0])))))
	})
	return out, err
}

// SetLength keeps the first n cached tokens of a slot (0 frees it).
func (m *Module) SetLength(slot, n int) error {
	return m.w.do(func() error {
		if m.ptr == nil {
			return ErrClosed
		}
		return wrap(status(C.b_model_set_length(m.ptr, C.int32_t(slot), C.int32_t(n))))
	})
}

// CopySlot makes slot dst a copy of slot src (its cache and length).
func (m *Module) CopySlot(src, dst int) error {
	return m.w.do(func() error {
		if m.ptr == nil {
			return ErrClosed
		}
		return wrap(status(C.b_model_copy_slot(m.ptr, C.int32_t(src), C.int32_t(dst))))
	})
}

func wrap(err error) error {
	if err != nil {
		return fmt.Errorf("torch: %w", err)
	}
	return nil
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

func growInt32(b []int32, n int) []int32 {
	if cap(b) < n {
		return make([]int32, n)
	}
	return b[:n]
}
