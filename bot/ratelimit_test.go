package bot

import (
	"context"
	"slices"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told, so limits are tested exactly.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func TestSpacingSchedule(t *testing.T) {
	start := time.Unix(1000, 0)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name      string
		earliest  []time.Duration // successive bookings, all made at start
		scheduled []time.Duration
	}{
		{"first is free", []time.Duration{0}, []time.Duration{0}},
		{"a burst is spaced", []time.Duration{0, 0, 0}, []time.Duration{0, ms(100), ms(200)}},
		{"far apart: no wait", []time.Duration{0, ms(500)}, []time.Duration{0, ms(500)}},
		{"a gap before a later booking is used", []time.Duration{ms(300), 0, 0, 0},
			[]time.Duration{ms(300), 0, ms(100), ms(200)}},
		{"a gap too small is skipped", []time.Duration{ms(150), 0, 0}, []time.Duration{ms(150), 0, ms(250)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := spacing{gap: ms(100)}
			for i, e := range tc.earliest {
				if got := s.schedule(start, start.Add(e)).Sub(start); got != tc.scheduled[i] {
					t.Errorf("booking %d: at %v, want %v", i, got, tc.scheduled[i])
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
	global := time.Second / 30

	steps := []struct {
		name  string
		chat  int64
		group bool
		want  time.Duration
	}{
		{"first message to a chat", 1, false, 0},
		{"another chat right away", 2, false, global},                // global: 30/s
		{"same chat again", 1, false, time.Second},                   // per chat: 1/s
		{"first group message", -1, true, 2 * global},                // global only, before chat 1's second message
		{"second group message", -1, true, 2*global + 3*time.Second}, // per group: 20/min from the first one's send
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

// TestLimiterHoldsEveryLimitAtSendTime books bursts from many chats and
// checks the send times themselves, which is what Telegram counts. The
// second part is the case a token bucket got wrong: chats whose second
// message waits for their own limit, while others start meanwhile.
func TestLimiterHoldsEveryLimitAtSendTime(t *testing.T) {
	start := time.Unix(1000, 0)
	clock := &fakeClock{now: start}
	l := newLimiter(Limits{ChatPerSecond: 1, GroupPerMinute: 20, GlobalPerSecond: 30}, clock.Now, sleepCtx)
	sends := map[int64][]time.Duration{}
	book := func(id int64) {
		d := l.reserve(id, id%3 == 0) // a third are groups
		sends[id] = append(sends[id], clock.now.Add(d).Sub(start))
	}
	for range 4 { // 120 chats x 4 messages at once
		for id := range int64(120) {
			book(id)
		}
	}
	clock.now = start.Add(time.Minute)
	for id := int64(1000); id < 1008; id++ { // 8 chats x 2 messages
		book(id)
		book(id)
	}
	clock.now = clock.now.Add(time.Second / 2)
	for id := int64(2000); id < 2030; id++ { // 30 new chats, half a second later
		book(id)
	}
	var all []time.Duration
	for id, ds := range sends {
		all = append(all, ds...)
		gap := time.Second
		if id%3 == 0 {
			gap = 3 * time.Second
		}
		for i := 1; i < len(ds); i++ {
			if ds[i]-ds[i-1] < gap {
				t.Fatalf("chat %d: sends %v apart, want at least %v", id, ds[i]-ds[i-1], gap)
			}
		}
	}
	slices.Sort(all)
	for i := 30; i < len(all); i++ {
		if all[i]-all[i-30] < time.Second {
			t.Fatalf("31 sends within %v, from %v", all[i]-all[i-30], all[i-30])
		}
	}
	// No time is wasted: the first 480 sends at 30/s take 16 s.
	if last := all[479]; last > 16*time.Second+time.Second/2 {
		t.Errorf("the 480th send waits %v, want about 16s", last)
	}
}

// TestBusyChatDoesNotHoldUpOthers: messages queued behind one chat's own
// limit leave the global schedule free for other chats meanwhile.
func TestBusyChatDoesNotHoldUpOthers(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	l := newLimiter(Limits{ChatPerSecond: 1, GroupPerMinute: 20, GlobalPerSecond: 30}, clock.Now, sleepCtx)
	for range 5 {
		l.reserve(1, false) // goes at 0, 1, 2, 3 and 4 s
	}
	if d := l.reserve(2, false); d != interval(30) {
		t.Errorf("another chat waits %v behind a busy one, want %v", d, interval(30))
	}
}

func TestLimiterForgetsIdleChats(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	l := newLimiter(Limits{ChatPerSecond: 1, GroupPerMinute: 20, GlobalPerSecond: 1e6}, clock.Now, sleepCtx)
	for id := range int64(maxPacers) {
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
