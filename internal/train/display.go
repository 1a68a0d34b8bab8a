package train

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Display shows the run's progress: one stage after another (dataset,
// training, export), each with a count of done units and a detail line
// (loss, speed, time left). Methods may be called from several goroutines.
type Display interface {
	Stage(name string, total int64, unit Unit)
	Progress(done int64, detail string)
	Note(msg string)         // a line of its own, kept above the progress
	EndStage(summary string) // the stage finished
}

// Unit is what a stage counts.
type Unit int

const (
	Steps Unit = iota
	Bytes
)

// NewBar draws a progress bar on a terminal (progressbar/v3).
func NewBar(w io.Writer) Display { return &barDisplay{w: w} }

// NewLines prints plain progress lines, for logs and pipes: a line when a
// stage starts and ends, and at most one progress line per interval.
func NewLines(w io.Writer, every time.Duration) Display {
	return &lineDisplay{w: w, every: every}
}

type barDisplay struct {
	mu   sync.Mutex
	w    io.Writer
	bar  *progressbar.ProgressBar
	name string
}

func (d *barDisplay) Stage(name string, total int64, unit Unit) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.name = name
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(d.w),
		progressbar.OptionSetDescription(name),
		progressbar.OptionSetWidth(24),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetPredictTime(false), // the detail carries the trainer's own estimate
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionShowDescriptionAtLineEnd(),
	}
	switch {
	case total <= 0:
		total = -1 // a spinner
	case unit == Bytes:
		opts = append(opts, progressbar.OptionShowBytes(true))
	default:
		opts = append(opts, progressbar.OptionShowCount())
	}
	d.bar = progressbar.NewOptions64(total, opts...)
}

func (d *barDisplay) Progress(done int64, detail string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar == nil {
		return
	}
	d.bar.Describe(d.name + "  " + detail)
	_ = d.bar.Set64(done)
}

func (d *barDisplay) Note(msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar != nil {
		_ = d.bar.Clear()
	}
	fmt.Fprintln(d.w, msg)
	if d.bar != nil {
		_ = d.bar.RenderBlank()
	}
}

func (d *barDisplay) EndStage(summary string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar != nil {
		_ = d.bar.Clear()
		d.bar = nil
	}
	fmt.Fprintf(d.w, "%s: %s\n", d.name, summary)
}

type lineDisplay struct {
	mu    sync.Mutex
	w     io.Writer
	every time.Duration
	name  string
	total int64
	last  time.Time
	moved bool // a progress line with done > 0 was printed this stage
}

func (d *lineDisplay) Stage(name string, total int64, _ Unit) {
	d.mu.Lock()
	defer d.mu.Unlock()
	again := name == d.name // the same stage, now with its total
	d.name, d.total, d.last, d.moved = name, total, time.Time{}, false
	if !again {
		fmt.Fprintf(d.w, "%s: started\n", name)
	}
}

func (d *lineDisplay) Progress(done int64, detail string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	// The first line that has moved is always shown: it carries the first ETA.
	first := done > 0 && !d.moved
	if !d.last.IsZero() && now.Sub(d.last) < d.every && done != d.total && !first {
		return
	}
	d.last, d.moved = now, d.moved || done > 0
	if d.total > 0 {
		fmt.Fprintf(d.w, "%s: %d%% %s\n", d.name, done*100/d.total, detail)
	} else {
		fmt.Fprintf(d.w, "%s: %s\n", d.name, detail)
	}
}

func (d *lineDisplay) Note(msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintln(d.w, msg)
}

func (d *lineDisplay) EndStage(summary string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.w, "%s: %s\n", d.name, summary)
}
