package train

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// trainProgress turns the trainer's events into the display.
type trainProgress struct {
	d               Display
	readStderrSteps bool // an older finetune.py: progress from its stderr lines

	mu    sync.Mutex
	total int
	last  Event
	evals int
	start time.Time
}

func newTrainProgress(d Display) *trainProgress {
	return &trainProgress{d: d, start: time.Now()}
}

func (t *trainProgress) event(ev Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch ev.Event {
	case "start":
		t.setTotal(ev.TotalSteps)
		t.last.Step = ev.Step // a resumed run starts there
		t.d.Progress(int64(ev.Step), "validating the model before training")
	case "stopped":
		t.d.Note(fmt.Sprintf("%s: stopped at step %d of %d, checkpoint saved", stageTraining, ev.Step, ev.TotalSteps))
	case "step":
		if t.total == 0 {
			t.setTotal(ev.TotalSteps)
		}
		t.last = ev
		t.d.Progress(int64(ev.Step), stepDetail(ev))
	case "eval":
		t.evals++
		if ev.ValidPPL != nil && ev.ValidLoss != nil {
			t.d.Note(fmt.Sprintf("%s: step %d: held-out loss %.4f, perplexity %.2f", stageTraining, ev.Step, *ev.ValidLoss, *ev.ValidPPL))
		}
	}
}

// setTotal starts the step bar once the number of steps is known.
func (t *trainProgress) setTotal(n int) {
	if n > 0 && n != t.total {
		t.total = n
		t.d.Stage(stageTraining, int64(n), Steps)
	}
}

func stepDetail(ev Event) string {
	var parts []string
	if ev.Loss != nil {
		parts = append(parts, fmt.Sprintf("loss %.4f", *ev.Loss))
	}
	if ev.TokensPerS > 0 {
		parts = append(parts, fmt.Sprintf("%.0f tok/s", ev.TokensPerS))
	}
	if ev.ETAS != nil {
		parts = append(parts, "eta "+fmtDuration(time.Duration(*ev.ETAS*float64(time.Second))))
	}
	return strings.Join(parts, " · ")
}

// stderr shows the trainer's notable human lines: resuming, and with an
// older finetune.py its step and validation lines.
func (t *trainProgress) stderr(line string) {
	switch {
	case strings.Contains(line, "resumed from"), strings.Contains(line, "stopping at step"):
		t.d.Note(stageTraining + ": " + strings.TrimPrefix(line, "finetune: "))
	case !t.readStderrSteps:
	case strings.Contains(line, "valid ") && strings.Contains(line, " ppl "):
		t.d.Note(stageTraining + ": " + strings.TrimPrefix(line, "finetune: "))
	default:
		if ev, ok := ParseStderrStep(line); ok {
			t.event(ev)
		}
	}
}

func (t *trainProgress) summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := fmt.Sprintf("%d steps in %s", t.last.Step, time.Since(t.start).Round(time.Second))
	if t.last.Loss != nil {
		s += fmt.Sprintf(", last loss %.4f", *t.last.Loss)
	}
	if t.last.TokensPerS > 0 {
		s += fmt.Sprintf(", %.0f tok/s", t.last.TokensPerS)
	}
	return s
}
