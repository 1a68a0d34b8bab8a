package torch

import "runtime"

// worker runs functions on one goroutine locked to one OS thread. libtorch
// keeps per-thread state (inference-mode guards, the current CUDA device and
// stream, the thread pool it was configured on), and goroutines move between
// threads, so every call into the bridge for a module goes through its worker.
type worker struct {
	calls chan call
	done  chan struct{}
}

type call struct {
	fn    func() error
	reply chan error
}

func newWorker() *worker {
	w := &worker{calls: make(chan call), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *worker) loop() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(w.done)
	for c := range w.calls {
		c.reply <- c.fn()
	}
}

// do runs fn on the worker's thread and waits for it.
func (w *worker) do(fn func() error) error {
	reply := make(chan error, 1)
	w.calls <- call{fn: fn, reply: reply}
	return <-reply
}

// stop ends the worker after the calls already sent.
func (w *worker) stop() {
	close(w.calls)
	<-w.done
}
