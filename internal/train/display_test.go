package train

import (
	"strings"
	"testing"
	"time"
)

// TestLinesShowFirstMoveAndEnd: between the throttled lines, the first step
// (the first ETA) and the last are always printed.
func TestLinesShowFirstMoveAndEnd(t *testing.T) {
	var b strings.Builder
	d := NewLines(&b, time.Hour)
	d.Stage("[2/3] training", 10, Steps)
	d.Progress(0, "loading")
	d.Progress(1, "eta 0:01:00")
	d.Progress(2, "eta 0:00:50")
	d.Progress(10, "eta 0:00:00")
	d.EndStage("10 steps")
	want := "[2/3] training: started\n[2/3] training: 0% loading\n[2/3] training: 10% eta 0:01:00\n" +
		"[2/3] training: 100% eta 0:00:00\n[2/3] training: 10 steps\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestBarDrawsStages: the bar writes its stages and summaries to the writer.
func TestBarDrawsStages(t *testing.T) {
	var b strings.Builder
	d := NewBar(&b)
	d.Stage("[1/3] dataset", 100, Bytes)
	d.Progress(50, "eta 0:00:01")
	d.Note("a note")
	d.EndStage("done")
	out := b.String()
	for _, want := range []string{"a note\n", "[1/3] dataset: done\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("%q not in %q", want, out)
		}
	}
}
