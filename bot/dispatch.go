package bot

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mymmrac/telego"
)

// dispatcher keeps each chat's updates in order while chats run in parallel:
// one worker goroutine per active chat drains that chat's bounded queue, a
// semaphore bounds how many updates are handled at once, and a worker idle
// for a while exits so quiet chats cost nothing.
type dispatcher struct {
	handle    func(ctx context.Context, u telego.Update)
	log       *slog.Logger
	queueSize int
	idle      time.Duration
	sem       chan struct{}

	mu      sync.Mutex
	chats   map[int64]chan telego.Update
	recent  recentIDs
	closing bool
	wg      sync.WaitGroup
}

// recentIDs remembers the last update ids seen. Telegram redelivers a
// webhook update it thinks was not received, and answering it again would
// send the same reply twice.
type recentIDs struct {
	seen map[int]bool
	ring []int
	next int
}

const recentUpdates = 4096

// add records id and reports whether it is new.
func (r *recentIDs) add(id int) bool {
	if r.seen == nil {
		r.seen, r.ring = map[int]bool{}, make([]int, 0, recentUpdates)
	}
	if r.seen[id] {
		return false
	}
	if len(r.ring) < recentUpdates {
		r.ring = append(r.ring, id)
	} else {
		delete(r.seen, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % recentUpdates
	}
	r.seen[id] = true
	return true
}

func newDispatcher(handle func(context.Context, telego.Update), log *slog.Logger, o Options) *dispatcher {
	return &dispatcher{
		handle: handle, log: log, queueSize: o.QueueSize, idle: o.IdleTimeout,
		sem:   make(chan struct{}, o.MaxConcurrent),
		chats: map[int64]chan telego.Update{},
	}
}

// dispatch queues an update on its chat's worker, starting one if needed. It
// never blocks: a chat that floods past its queue loses the excess rather than
// stalling every other chat.
func (d *dispatcher) dispatch(ctx context.Context, u telego.Update) {
	key := chatKey(u)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return
	}
	if !d.recent.add(u.UpdateID) {
		d.log.Info("duplicate update ignored", "update_id", u.UpdateID)
		return
	}
	q, ok := d.chats[key]
	if !ok {
		q = make(chan telego.Update, d.queueSize)
		d.chats[key] = q
		d.wg.Add(1)
		go d.work(ctx, key, q)
	}
	select {
	case q <- u:
	default:
		d.log.Warn("chat queue full, dropping update", "chat_id", key, "update_id", u.UpdateID)
	}
}

// work handles one chat's updates in order until the queue stays empty for
// the idle time or the dispatcher closes.
func (d *dispatcher) work(ctx context.Context, key int64, q chan telego.Update) {
	defer d.wg.Done()
	idle := time.NewTimer(d.idle)
	defer idle.Stop()
	for {
		select {
		case u, ok := <-q:
			if !ok {
				return // closed and drained
			}
			d.run(ctx, u)
			idle.Reset(d.idle)
		case <-idle.C:
			if d.retire(key, q) {
				return
			}
			idle.Reset(d.idle)
		}
	}
}

// retire removes an idle worker unless an update slipped in meanwhile; it is
// done under the lock so dispatch never queues on a worker that has gone.
func (d *dispatcher) retire(key int64, q chan telego.Update) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(q) > 0 {
		return false
	}
	delete(d.chats, key)
	return true
}

func (d *dispatcher) run(ctx context.Context, u telego.Update) {
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return // shutting down: what is still queued is dropped
	}
	defer func() { <-d.sem }()
	d.handle(ctx, u)
}

// close stops taking updates, lets the workers drain their queues within
// grace, then cancels what is left through cancel and waits for every worker.
func (d *dispatcher) close(grace time.Duration, cancel context.CancelFunc) {
	d.mu.Lock()
	d.closing = true
	for key, q := range d.chats {
		close(q)
		delete(d.chats, key)
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

// chatKey is the chat an update belongs to; updates without one share key 0.
func chatKey(u telego.Update) int64 {
	if m := updateMessage(u); m != nil {
		return m.Chat.ID
	}
	return 0
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
