package main

import (
	"fmt"
	"io"
	"sync"
	"testing"
)

// logTB lets telegramtest, written for tests, run in a process: what would
// fail a test is logged and kept for the control server's /errors.
type logTB struct {
	// testing.TB is embedded, nil, only for its unexported method; the
	// methods telegramtest calls (Helper, Errorf, Fatalf, Cleanup) are
	// defined below, and any other one would panic.
	testing.TB
	log io.Writer

	mu       sync.Mutex
	errs     []string
	cleanups []func()
}

func newLogTB(log io.Writer) *logTB { return &logTB{log: log} }

func (t *logTB) Helper() {}

func (t *logTB) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(t.log, "fakebotapi:", msg)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.errs = append(t.errs, msg)
}

// Fatalf only records: telegramtest calls it from WaitSent, which this
// command never calls, and a server must not stop its goroutine.
func (t *logTB) Fatalf(format string, args ...any) { t.Errorf(format, args...) }

func (t *logTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// errors is what went wrong so far: calls the fake could not answer.
func (t *logTB) errors() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string{}, t.errs...)
}

// cleanup runs the cleanups last first, as testing does.
func (t *logTB) cleanup() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
