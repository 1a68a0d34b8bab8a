package bot

import (
	"context"
	"time"
)

// claimInterval is how often a replica renews its claims and looks for
// unclaimed chats when nothing arrived here (an update this replica
// accepted looks at once); a claim lives Options.ClaimTTL unless renewed.
const claimInterval = time.Second

// claimLoop serves a store shared by replicas: it renews this replica's
// claims, claims chats with unfinished updates that no live replica holds
// (those of a replica that died, after claimTTL) and hands their updates to
// the dispatcher, until ctx is done.
func (b *Bot) claimLoop(ctx, work context.Context, d *dispatcher, nudge <-chan struct{}) {
	t := time.NewTicker(claimInterval)
	defer t.Stop()
	for {
		b.claimRound(ctx, work, d)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-nudge:
		}
	}
}

func (b *Bot) claimRound(ctx, work context.Context, d *dispatcher) {
	if err := b.claims.Renew(ctx, b.opts.ClaimTTL); err != nil {
		if ctx.Err() == nil {
			b.log.Error("renewing the chats' claims failed", "err", err)
		}
		return
	}
	in, err := b.claims.Claim(ctx, b.opts.ClaimTTL, 2*b.opts.MaxConcurrent)
	if err != nil {
		if ctx.Err() == nil {
			b.log.Error("claiming chats failed", "err", err)
		}
		return
	}
	jobs := b.jobs(in)
	for _, j := range jobs {
		j.resumed = true // another replica may have begun it
	}
	d.dispatch(work, jobs...)
}

// release is the dispatcher's onIdle in shared mode.
func (b *Bot) release(ctx context.Context) func(queueKey) {
	return func(key queueKey) {
		if err := b.claims.Release(ctx, key.chat); err != nil && ctx.Err() == nil {
			b.log.Warn("releasing a chat's claim failed; it expires by itself", "chat_id", key.chat, "err", err)
		}
	}
}
