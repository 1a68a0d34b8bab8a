package train

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrInterrupted is returned when the run was stopped (Ctrl-C, SIGTERM):
// what was done is kept, and running the same command again resumes.
var ErrInterrupted = errors.New("interrupted")

// StopGrace is how long a script may take to stop after SIGINT (finetune.py
// leaves a checkpoint) before it is killed.
var StopGrace = 2 * time.Minute

// script is one run of a Python script of model/python.
type script struct {
	name     string // for messages: "finetune.py"
	python   string
	path     string
	args     []string
	log      io.Writer         // stderr, and stdout lines that are not events
	onEvent  func(Event)       // each event line of stdout
	onStderr func(line string) // each stderr line, after it is logged
}

// run runs the script to its end. When ctx ends first, the script gets one
// SIGINT (it is in its own process group, so a Ctrl-C in the terminal
// reaches only dialogbot, which forwards it once) and is waited for.
func (s script) run(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, s.python, append([]string{"-u", s.path}, s.args...)...)
	cmd.Dir = "/" // not the repository, where "import torch" would find the Go package's torch/
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = StopGrace
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	tail := &tailLines{max: 40}
	var logMu sync.Mutex
	logLine := func(line string) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintln(s.log, line)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		scanLines(stdout, func(line string) {
			if ev, ok := ParseStdout(line); ok && s.onEvent != nil {
				s.onEvent(ev)
				return
			}
			logLine(line)
		})
	}()
	go func() {
		defer wg.Done()
		scanLines(stderr, func(line string) {
			logLine(line)
			tail.add(line)
			if s.onStderr != nil {
				s.onStderr(line)
			}
		})
	}()
	wg.Wait()
	err = cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w (%v)", s.name, ErrInterrupted, err)
	case err != nil:
		return fmt.Errorf("%s failed (%v): %s", s.name, err, tail.lastError())
	}
	return nil
}

func scanLines(r io.Reader, each func(string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		each(sc.Text())
	}
	// A line over 4 MB ends the scan; drain the rest so the script never
	// blocks on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

// tailLines keeps the last lines of a script's stderr for the error message.
type tailLines struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tailLines) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if strings.TrimSpace(line) == "" {
		return
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

// lastError is the last line that looks like an error (a script's
// "finetune: error: ..." or a traceback's final "XError: ..."), else the
// last line.
func (t *tailLines) lastError() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.lines) - 1; i >= 0; i-- {
		if strings.Contains(strings.ToLower(t.lines[i]), "error") {
			return strings.TrimSpace(t.lines[i])
		}
	}
	if len(t.lines) == 0 {
		return "no output"
	}
	return strings.TrimSpace(t.lines[len(t.lines)-1])
}
