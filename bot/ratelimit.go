package bot

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// Telegram's limits are on when messages are sent, so the limiter hands
// out send times, not tokens: a message's time is final (the caller sleeps
// until then), and every limit counts it at that time. A token taken when a
// message is queued but spent a second later, when its chat's own limit lets
// it go, let other chats crowd the second it really went out in (more than
// 30 messages in one second under the 30/s limit, TestLimiterHoldsEveryLimitAtSendTime).

// pacer spaces one chat's (or group's) messages at least gap apart, in the
// order they were queued.
type pacer struct {
	gap  time.Duration
	next time.Time // the earliest time the next message may go
}

// spacing keeps the global sends at least gap apart. A message whose chat
// makes it wait takes the first free gap from then on, and others may go
// before it in the meantime: one busy chat does not hold up the rest.
type spacing struct {
	gap   time.Duration
	times []time.Time // scheduled sends, sorted; those a gap in the past are dropped
}

// schedule books the earliest send time at or after earliest that is at
// least gap away from every other booked send.
func (s *spacing) schedule(now, earliest time.Time) time.Time {
	keep := 0
	for keep < len(s.times) && !s.times[keep].After(now.Add(-s.gap)) {
		keep++
	}
	s.times = s.times[keep:]
	t, at := earliest, len(s.times)
	for i, p := range s.times {
		if !p.Add(s.gap).After(t) {
			continue // far enough before t
		}
		if !t.Add(s.gap).After(p) {
			at = i // t fits before p, and the rest are later still
			break
		}
		t = p.Add(s.gap) // too close: the first time after p
	}
	s.times = slices.Insert(s.times, at, t)
	return t
}

// maxPacers bounds the per-chat maps; beyond it, idle pacers are dropped.
const maxPacers = 4096

// limiter applies the per-chat, per-group and global sending limits.
type limiter struct {
	limits Limits
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	global spacing
	chats  map[int64]*pacer
	groups map[int64]*pacer
}

func newLimiter(l Limits, now func() time.Time, sleep func(context.Context, time.Duration) error) *limiter {
	return &limiter{
		limits: l, now: now, sleep: sleep,
		global: spacing{gap: interval(l.GlobalPerSecond)},
		chats:  map[int64]*pacer{},
		groups: map[int64]*pacer{},
	}
}

// interval is the gap that gives perSecond, rounded up so that n gaps never
// fit n+1 sends into n/perSecond seconds.
func interval(perSecond float64) time.Duration {
	return time.Duration(math.Ceil(float64(time.Second) / perSecond))
}

// wait blocks until a message may be sent to chatID.
func (l *limiter) wait(ctx context.Context, chatID int64, group bool) error {
	return l.sleep(ctx, l.reserve(chatID, group))
}

// reserve books the next send to chatID and returns how long to wait for it.
func (l *limiter) reserve(chatID int64, group bool) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	chat := l.pacerFor(l.chats, chatID, interval(l.limits.ChatPerSecond), now)
	earliest := maxTime(now, chat.next)
	var grp *pacer
	if group {
		grp = l.pacerFor(l.groups, chatID, interval(l.limits.GroupPerMinute/60), now)
		earliest = maxTime(earliest, grp.next)
	}
	t := l.global.schedule(now, earliest)
	chat.next = t.Add(chat.gap)
	if grp != nil {
		grp.next = t.Add(grp.gap)
	}
	return t.Sub(now)
}

func (l *limiter) pacerFor(m map[int64]*pacer, id int64, gap time.Duration, now time.Time) *pacer {
	if p, ok := m[id]; ok {
		return p
	}
	if len(m) >= maxPacers {
		for k, p := range m {
			if !p.next.After(now) { // idle: forgetting it changes nothing
				delete(m, k)
			}
		}
	}
	p := &pacer{gap: gap, next: now}
	m[id] = p
	return p
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
