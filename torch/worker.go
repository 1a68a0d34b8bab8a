package torch

import (
	"runtime"
	"sync"
)

// worker runs functions on one goroutine locked to one OS thread. libtorch
// keeps per-thread state (inference-mode guards, the current CUDA device and
// stream, the thread pool it was configured on), and goroutines move between
// threads, so every call into the bridge for a module goes through its worker.
type worker struct {
	calls    chan call
	quit     chan struct{} // closed by stop: no new calls
	done     chan struct{} // closed when the loop has returned
	stopOnce sync.Once
}

type call struct {
	fn    func() error
	reply chan error
}

func newWorker() *worker {
	w := &worker{calls: make(chan call), quit: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// loop never unlocks its thread: libtorch has set thread-local state on it
// (OpenMP's thread count, inference mode), and a goroutine that exits
// locked takes its thread with it, so no other goroutine inherits that state.
func (w *worker) loop() {
	runtime.LockOSThread()
	defer close(w.done)
	for {
		select {
		case c := <-w.calls:
			c.reply <- c.fn()
		case <-w.quit:
			return
		}
	}
}

// do runs fn on the worker's thread and waits for it; after stop it
// returns ErrClosed without running fn. A call the loop has accepted
// always runs to the end, even if stop comes meanwhile.
func (w *worker) do(fn func() error) error {
	reply := make(chan error, 1)
	select {
	case w.calls <- call{fn: fn, reply: reply}:
		return <-reply
	case <-w.quit:
		return ErrClosed
	}
}

// stop ends the worker after the call it is running; it may be called
// more than once and from any goroutine.
func (w *worker) stop() {
	w.stopOnce.Do(func() { close(w.quit) })
	<-w.done
}
