package dataset

import (
	"math"
	"sort"
	"time"
)

// SplitByTime puts the latest dialogues (by the time of their first example)
// into validation, whole, so no dialogue is on both sides; it returns both
// parts in time order and the number of dialogues. A fraction above zero
// gives at least one validation dialogue, and below one leaves at least one
// for training, when there are two or more.
func SplitByTime(ex []Example, fraction float64) (train, valid []Example, dialogues int) {
	start := map[int]time.Time{}
	for _, e := range ex {
		if t, ok := start[e.Dialogue]; !ok || e.Time.Before(t) {
			start[e.Dialogue] = e.Time
		}
	}
	order := make([]int, 0, len(start))
	for d := range start {
		order = append(order, d)
	}
	sort.Slice(order, func(a, b int) bool {
		ta, tb := start[order[a]], start[order[b]]
		return ta.Before(tb) || (ta.Equal(tb) && order[a] < order[b])
	})
	isValid := map[int]bool{}
	for _, d := range order[len(order)-validCount(len(order), fraction):] {
		isValid[d] = true
	}
	for _, e := range ex {
		if isValid[e.Dialogue] {
			valid = append(valid, e)
		} else {
			train = append(train, e)
		}
	}
	byTime := func(s []Example) {
		sort.SliceStable(s, func(a, b int) bool { return s[a].Time.Before(s[b].Time) })
	}
	byTime(train)
	byTime(valid)
	return train, valid, len(order)
}

func validCount(n int, fraction float64) int {
	k := int(math.Round(fraction * float64(n)))
	if n >= 2 && fraction > 0 && k == 0 {
		k = 1
	}
	if n >= 2 && fraction < 1 && k == n {
		k = n - 1
	}
	return max(0, min(k, n))
}
