package dataset

import (
	"testing"
	"time"
)

func TestValidCount(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		fraction float64
		want     int
	}{
		{"tenth of twenty", 20, 0.1, 2},
		{"rounds", 14, 0.1, 1},
		{"at least one", 3, 0.1, 1},
		{"none asked", 10, 0, 0},
		{"one dialogue trains", 1, 0.1, 0},
		{"leaves one for training", 3, 0.9, 2},
		{"all asked", 3, 1, 3},
		{"empty", 0, 0.5, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := validCount(tc.n, tc.fraction); got != tc.want {
				t.Errorf("validCount(%d, %v) = %d, want %d", tc.n, tc.fraction, got, tc.want)
			}
		})
	}
}

func TestSplitByTime(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2024, 1, 1, h, 0, 0, 0, time.UTC) }
	// Dialogue 7 starts last although its number is small; dialogue 3 has an
	// example after dialogue 7 started but started earlier.
	ex := []Example{
		{Time: at(1), Dialogue: 1}, {Time: at(2), Dialogue: 1},
		{Time: at(3), Dialogue: 3}, {Time: at(9), Dialogue: 3},
		{Time: at(8), Dialogue: 7}, {Time: at(10), Dialogue: 7},
		{Time: at(4), Dialogue: 5},
	}
	train, valid, n := SplitByTime(ex, 0.25)
	if n != 4 || len(valid) != 2 || len(train) != 5 {
		t.Fatalf("dialogues %d, train %d, valid %d", n, len(train), len(valid))
	}
	for _, e := range valid {
		if e.Dialogue != 7 {
			t.Errorf("dialogue %d in validation, want only the latest (7)", e.Dialogue)
		}
	}
	for i := 1; i < len(train); i++ {
		if train[i].Time.Before(train[i-1].Time) {
			t.Errorf("train not in time order at %d", i)
		}
	}
}
