package dialog

import "testing"

// TestWindowKeepsPromptStarts: appending one turn at a time, the kept turns
// keep their first turn until an overflow, which leaves the newest half.
func TestWindowKeepsPromptStarts(t *testing.T) {
	w := Window{MaxTurns: 6}
	var kept []Turn
	starts := 0
	for i := range 20 {
		prev := kept
		kept = w.Apply(append(append([]Turn(nil), kept...), Turn{Speaker: User, Text: string(rune('a' + i))}))
		if len(kept) > 6 {
			t.Fatalf("turn %d: %d turns kept, want at most 6", i, len(kept))
		}
		if len(prev) > 0 && kept[0] == prev[0] {
			starts++
		}
	}
	// 20 turns with a window of 6: overflows at turns 7, 11, 15, 19 (each leaves 3).
	if starts != 15 {
		t.Errorf("%d of 19 appends kept the start, want 15", starts)
	}
}

func TestWindowKeep(t *testing.T) {
	cases := []struct{ max, n, want int }{
		{12, 5, 5}, {12, 12, 12}, {12, 13, 6}, {1, 2, 1}, {0, 100, 100}, {3, 4, 1},
	}
	for _, c := range cases {
		if got := (Window{MaxTurns: c.max}).Keep(c.n); got != c.want {
			t.Errorf("Window{%d}.Keep(%d) = %d, want %d", c.max, c.n, got, c.want)
		}
	}
}
