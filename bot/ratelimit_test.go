package bot

import (
	"context"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told, so limits are tested exactly.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func TestBucketReserve(t *testing.T) {
	start := time.Unix(1000, 0)
	tests := []struct {
		name  string
		rate  float64
		at    []time.Duration // times of successive reservations, from start
		waits []time.Duration
	}{
		{"first is free", 1, []time.Duration{0}, []time.Duration{0}},
		{"burst of one", 1, []time.Duration{0, 0, 0}, []time.Duration{0, time.Second, 2 * time.Second}},
		{"refilled after a pause", 1, []time.Duration{0, time.Second, 2 * time.Second}, []time.Duration{0, 0, 0}},
		{"half refilled", 2, []time.Duration{0, 250 * time.Millisecond}, []time.Duration{0, 250 * time.Millisecond}},
		{"group rate", 20.0 / 60, []time.Duration{0, 0}, []time.Duration{0, 3 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBucket(tc.rate, start)
			for i, at := range tc.at {
				if got := b.reserve(start.Add(at)); (got - tc.waits[i]).Abs() > time.Microsecond {
					t.Errorf("reservation %d: wait %v, want %v", i, got, tc.waits[i])
				}
			}
		})
	}
}

func TestLimiterAppliesEveryLimit(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	var slept []time.Duration
	sleep := func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	l := newLimiter(Limits{ChatPerSecond: 1, GroupPerMinute: 20, GlobalPerSecond: 30}, clock.Now, sleep)

	steps := []struct {
		name  string
		chat  int64
		group bool
		want  time.Duration
	}{
		{"first message to a chat", 1, false, 0},
		{"another chat right away", 2, false, time.Second / 30}, // global: 30/s
		{"same chat again", 1, false, time.Second},              // per chat: 1/s
		{"first group message", -1, true, 3 * time.Second / 30}, // global only
		{"second group message", -1, true, 3 * time.Second},     // per group: 20/min
	}
	for _, s := range steps {
		if err := l.wait(context.Background(), s.chat, s.group); err != nil {
			t.Fatal(err)
		}
		if got := slept[len(slept)-1]; (got - s.want).Abs() > time.Microsecond {
			t.Errorf("%s: waited %v, want %v", s.name, got, s.want)
		}
	}
}

func TestLimiterForgetsIdleChats(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	l := newLimiter(Limits{ChatPerSecond: 1, GroupPerMinute: 20, GlobalPerSecond: 1e6}, clock.Now, sleepCtx)
	for id := range int64(maxBuckets) {
		l.reserve(id, false)
	}
	clock.now = clock.now.Add(time.Minute)
	l.reserve(-1, false)
	if len(l.chats) != 1 {
		t.Errorf("%d chat buckets kept, want only the new one", len(l.chats))
	}
}

func TestSleepCtxCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleepCtx(ctx, time.Hour); err == nil {
		t.Errorf("sleepCtx returned nil on a cancelled context")
	}
}
