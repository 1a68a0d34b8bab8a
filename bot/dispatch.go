package bot

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mymmrac/telego"
)

// dispatcher keeps each chat's updates in order while chats run in parallel:
// one worker goroutine per active chat takes that chat's updates one at a
// time, a semaphore bounds how many are handled at once, and a worker idle
// for a while exits so quiet chats cost nothing. Every update it gets is in
// the inbox already, so nothing queued here is lost with the process.
type dispatcher struct {
	handle    func(ctx context.Context, j *job)
	log       *slog.Logger
	queueSize int
	idle      time.Duration
	sem       chan struct{}

	// idle, when set, is called when a chat's worker retires (its queue
	// stayed empty): a shared store releases the chat's claim.
	onIdle func(key queueKey)

	mu      sync.Mutex
	chats   map[queueKey]*chatQueue
	known   map[int]bool // update ids queued or being handled
	closing bool
	wg      sync.WaitGroup
}

// queueKey is the queue an update goes to: its chat's, or, for an update
// without a chat, one of its own, so such updates never wait behind (or
// crowd) a real chat's.
type queueKey struct {
	chat int64
	solo int // the update id of an update without a chat
}

type chatQueue struct {
	jobs []*job
	wake chan struct{} // signalled (capacity 1) when jobs are added or the dispatcher closes
}

func newDispatcher(handle func(context.Context, *job), log *slog.Logger, o Options) *dispatcher {
	return &dispatcher{
		handle: handle, log: log, queueSize: o.QueueSize, idle: o.IdleTimeout,
		sem:   make(chan struct{}, o.MaxConcurrent),
		chats: map[queueKey]*chatQueue{}, known: map[int]bool{},
	}
}

// dispatch queues updates on their chats' workers, starting them as needed.
// It never blocks.
func (d *dispatcher) dispatch(ctx context.Context, jobs ...*job) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return // accepted all the same: the next start handles them
	}
	for _, j := range jobs {
		if d.known[j.in.UpdateID] {
			continue // claimed again while still queued here
		}
		d.known[j.in.UpdateID] = true
		key := keyOf(j)
		q, ok := d.chats[key]
		if !ok {
			q = &chatQueue{wake: make(chan struct{}, 1)}
			d.chats[key] = q
			d.wg.Add(1)
			go d.work(ctx, key, q)
		}
		q.jobs = append(q.jobs, j)
		signal(q.wake)
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// work handles one chat's updates in order until the queue stays empty for
// the idle time or the dispatcher closes.
func (d *dispatcher) work(ctx context.Context, key queueKey, q *chatQueue) {
	defer d.wg.Done()
	idle := time.NewTimer(d.idle)
	defer idle.Stop()
	for {
		j, closing := d.next(q)
		if j != nil {
			d.run(ctx, j)
			idle.Reset(d.idle)
			continue
		}
		if closing {
			return
		}
		select {
		case <-q.wake:
		case <-idle.C:
			if d.retire(key, q) {
				if d.onIdle != nil {
					d.onIdle(key)
				}
				return
			}
			idle.Reset(d.idle)
		}
	}
}

// next takes a queue's oldest update. One with more of its chat's updates
// waiting behind it than the queue size is marked overflow: it becomes
// context for a newer one instead of getting an answer of its own.
func (d *dispatcher) next(q *chatQueue) (*job, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(q.jobs) == 0 {
		return nil, d.closing
	}
	j := q.jobs[0]
	q.jobs[0] = nil
	q.jobs = q.jobs[1:]
	j.overflow = len(q.jobs) >= d.queueSize
	return j, false
}

// retire removes an idle worker unless an update slipped in meanwhile; it is
// done under the lock so dispatch never queues on a worker that has gone.
func (d *dispatcher) retire(key queueKey, q *chatQueue) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(q.jobs) > 0 {
		return false
	}
	delete(d.chats, key)
	return true
}

func (d *dispatcher) run(ctx context.Context, j *job) {
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return // shutting down: it stays in the inbox for the next start
	}
	defer func() { <-d.sem }()
	defer d.forget(j)
	if ctx.Err() != nil {
		return
	}
	d.handle(ctx, j)
}

func (d *dispatcher) forget(j *job) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.known, j.in.UpdateID)
}

// close stops taking updates, lets the workers drain their queues within
// grace, then cancels what is left through cancel (it stays in the inbox)
// and waits for every worker.
func (d *dispatcher) close(grace time.Duration, cancel context.CancelFunc) {
	d.mu.Lock()
	d.closing = true
	for _, q := range d.chats {
		signal(q.wake)
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		cancel()
		<-done
	}
}

func keyOf(j *job) queueKey {
	if m := updateMessage(j.u); m != nil {
		return queueKey{chat: m.Chat.ID}
	}
	return queueKey{solo: j.in.UpdateID}
}

func updateMessage(u telego.Update) *telego.Message {
	switch {
	case u.Message != nil:
		return u.Message
	case u.EditedMessage != nil:
		return u.EditedMessage
	}
	return nil
}
