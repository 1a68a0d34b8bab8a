package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mymmrac/telego"
	ta "github.com/mymmrac/telego/telegoapi"
)

// poll long-polls getUpdates until ctx is done. Each batch is stored in the
// inbox before the next call confirms it (its offset is past them), so an
// update Telegram forgets is one the bot has. It is our own loop rather than
// telego's so that shutdown interrupts even its retry waits, and so that
// the offset of the last update is confirmed before exit.
func (b *Bot) poll(ctx, work context.Context, d *dispatcher) error {
	err := b.startCall(ctx, "delete webhook", func() error {
		return b.api.DeleteWebhook(ctx, &telego.DeleteWebhookParams{})
	})
	if err != nil {
		return nil // stopped while starting
	}
	offset, backoff := 0, b.opts.RetryBackoff
	for ctx.Err() == nil {
		updates, err := b.getUpdates(ctx, offset, b.opts.PollTimeout)
		if err == nil {
			err = b.accept(ctx, work, d, updates)
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			wait := pollRetryDelay(err, backoff)
			b.log.Error("getting updates failed", "err", err, "retry_in", wait, "hint", pollHint(err))
			_ = sleepCtx(ctx, wait)
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		backoff = b.opts.RetryBackoff
		for _, u := range updates {
			offset = max(offset, u.UpdateID+1)
		}
	}
	b.confirm(ctx, offset)
	return nil
}

// accept stores updates in the inbox and hands the new ones to their chats.
// Stored means safe: only then may Telegram be told they arrived.
func (b *Bot) accept(ctx, work context.Context, d *dispatcher, updates []Incoming) error {
	jobs := b.jobs(updates)
	for i, j := range jobs {
		if m := updateMessage(j.u); m != nil {
			updates[i].ChatKey = m.Chat.ID
		}
	}
	fresh, err := b.store.Accept(ctx, updates)
	if err != nil {
		return err
	}
	if dup := len(updates) - len(fresh); dup > 0 {
		b.stats.duplicates.Add(int64(dup))
		b.log.Info("duplicate updates ignored", "count", dup)
	}
	b.stats.received.Add(int64(len(fresh)))
	if b.claims != nil {
		signal(b.nudge) // the claim loop hands them out, here or on the replica holding their chat
		return nil
	}
	d.dispatch(work, pick(jobs, fresh)...)
	return nil
}

// pick returns the jobs of the fresh updates, in their order.
func pick(jobs []*job, fresh []Incoming) []*job {
	if len(fresh) == len(jobs) {
		return jobs
	}
	ids := make(map[int]bool, len(fresh))
	for _, in := range fresh {
		ids[in.UpdateID] = true
	}
	var out []*job
	for _, j := range jobs {
		if ids[j.in.UpdateID] {
			out = append(out, j)
		}
	}
	return out
}

// jobs decodes accepted updates. One the Telegram library cannot read (a
// type newer than it) keeps only its id: it is finished as ignored.
func (b *Bot) jobs(in []Incoming) []*job {
	out := make([]*job, len(in))
	for i, u := range in {
		j := &job{in: u}
		if err := json.Unmarshal(u.Body, &j.u); err != nil {
			b.log.Warn("undecodable update skipped", "update_id", u.UpdateID, "err", err)
			j.u = telego.Update{UpdateID: u.UpdateID}
		}
		out[i] = j
	}
	return out
}

// startCall repeats a start-up call (getMe, deleteWebhook, setWebhook) with
// backoff until it succeeds or ctx is done: at start-up Telegram or the
// network may be down for a while, and exiting would only make the service
// manager restart the bot in a tighter loop.
func (b *Bot) startCall(ctx context.Context, what string, call func() error) error {
	backoff := b.opts.RetryBackoff
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := backoff
		if d, ok := retryDelay(err, 1, backoff); ok {
			wait = max(d, backoff)
		}
		b.log.Error(what+" failed, retrying", "attempt", attempt, "err", err, "retry_in", wait, "hint", pollHint(err))
		if sleepCtx(ctx, wait) != nil {
			return ctx.Err()
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// getUpdates decodes each update on its own rather than through telego's
// GetUpdates: there one update it cannot read (a type newer than telego)
// fails the whole batch, again on every retry, and the bot would answer no
// one ever again. Such an update is logged and kept with its id only, so the
// offset moves past it.
func (b *Bot) getUpdates(ctx context.Context, offset int, timeout time.Duration) ([]Incoming, error) {
	// The request gets a deadline of its own: a connection that silently died
	// would otherwise hang the loop forever.
	ctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	body, err := json.Marshal(&telego.GetUpdatesParams{
		Offset: offset, Timeout: int(timeout / time.Second),
		AllowedUpdates: []string{"message"}, // all the bot answers; spares the traffic of the rest
	})
	if err != nil {
		return nil, fmt.Errorf("get updates: %w", err)
	}
	caller := redactingCaller{next: ta.HTTPCaller{Client: b.client}, token: b.opts.Token}
	resp, err := caller.Call(ctx, b.opts.APIURL+"/bot"+b.opts.Token+"/getUpdates",
		&ta.RequestData{ContentType: ta.ContentTypeJSON, BodyRaw: body})
	switch {
	case err != nil:
		return nil, fmt.Errorf("get updates: %w", err)
	case !resp.Ok && resp.Error != nil:
		return nil, fmt.Errorf("get updates: %w", resp.Error)
	case !resp.Ok:
		return nil, errors.New("get updates: not ok")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(resp.Result, &raws); err != nil {
		return nil, fmt.Errorf("get updates: %w", err)
	}
	updates := make([]Incoming, len(raws))
	for i, raw := range raws {
		id, err := updateID(raw)
		if err != nil {
			return nil, fmt.Errorf("get updates: %w", err)
		}
		updates[i] = Incoming{UpdateID: id, Body: raw}
	}
	return updates, nil
}

// updateID reads an update's id, all that must be readable to store it.
func updateID(raw []byte) (int, error) {
	var id struct {
		UpdateID *int `json:"update_id"`
	}
	if err := json.Unmarshal(raw, &id); err != nil {
		return 0, fmt.Errorf("update: %w", err)
	}
	if id.UpdateID == nil {
		return 0, errors.New("update without an update_id")
	}
	return *id.UpdateID, nil
}

// confirm tells Telegram that every update before offset was received.
func (b *Bot) confirm(ctx context.Context, offset int) {
	if offset == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if _, err := b.getUpdates(ctx, offset, 0); err != nil {
		b.log.Warn("confirming the last updates failed; they may come again after a restart", "err", err)
	}
}

// pollHint says what a user can do about the Bot API errors of polling
// that a retry will not cure.
func pollHint(err error) string {
	var apiErr *ta.Error
	if !errors.As(err, &apiErr) {
		return ""
	}
	switch apiErr.ErrorCode {
	case http.StatusConflict:
		return "another process is polling with this token, or a webhook is set: stop the other instance"
	case http.StatusUnauthorized, http.StatusNotFound:
		return "the token is wrong or revoked: check TELEGRAM_BOT_TOKEN"
	}
	return ""
}

func pollRetryDelay(err error, backoff time.Duration) time.Duration {
	if d, ok := retryDelay(err, 1, backoff); ok {
		return max(d, backoff)
	}
	return backoff
}
