package bot

import (
	"context"
	"sync"
	"time"
)

// bucket is a token bucket that hands out reservations: taking a token may
// drive it negative, and the caller waits until its token would have been
// there. Burst is one token, so no window ever holds more than rate*window+1
// messages: Telegram's limits are hard, not averages.
type bucket struct {
	rate   float64 // tokens per second
	tokens float64
	last   time.Time
}

func newBucket(rate float64, now time.Time) *bucket {
	return &bucket{rate: rate, tokens: 1, last: now}
}

// reserve takes a token and says how long to wait before using it.
func (b *bucket) reserve(now time.Time) time.Duration {
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = min(1, b.tokens+elapsed*b.rate)
		b.last = now
	}
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// full says whether the bucket has refilled by now, so forgetting it changes nothing.
func (b *bucket) full(now time.Time) bool {
	return b.tokens+now.Sub(b.last).Seconds()*b.rate >= 1
}

// maxBuckets bounds the per-chat maps; beyond it, refilled buckets are dropped.
const maxBuckets = 4096

// limiter applies the per-chat, per-group and global sending limits.
type limiter struct {
	limits Limits
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	global *bucket
	chats  map[int64]*bucket
	groups map[int64]*bucket
}

func newLimiter(l Limits, now func() time.Time, sleep func(context.Context, time.Duration) error) *limiter {
	return &limiter{
		limits: l, now: now, sleep: sleep,
		global: newBucket(l.GlobalPerSecond, now()),
		chats:  map[int64]*bucket{},
		groups: map[int64]*bucket{},
	}
}

// wait blocks until a message may be sent to chatID.
func (l *limiter) wait(ctx context.Context, chatID int64, group bool) error {
	return l.sleep(ctx, l.reserve(chatID, group))
}

// reserve takes a token from each bucket that applies and returns the longest wait.
func (l *limiter) reserve(chatID int64, group bool) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	d := max(l.global.reserve(now), l.bucketFor(l.chats, chatID, l.limits.ChatPerSecond, now).reserve(now))
	if group {
		d = max(d, l.bucketFor(l.groups, chatID, l.limits.GroupPerMinute/60, now).reserve(now))
	}
	return d
}

func (l *limiter) bucketFor(m map[int64]*bucket, id int64, rate float64, now time.Time) *bucket {
	if b, ok := m[id]; ok {
		return b
	}
	if len(m) >= maxBuckets {
		for k, b := range m {
			if b.full(now) {
				delete(m, k)
			}
		}
	}
	b := newBucket(rate, now)
	m[id] = b
	return b
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
