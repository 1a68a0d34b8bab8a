package bot

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/mymmrac/telego"
)

// job is one accepted update being handled. Its messages are numbered in
// the order the handler sends them; the handler's path through an update is
// the same when it runs again after a crash, so number n is the same
// message both times, and the outbox says whether it went out already.
type job struct {
	in       Incoming
	u        telego.Update
	overflow bool // more of its chat's updates wait than the queue holds: context only
	resumed  bool // left unfinished by an earlier run (or another replica): its outbox may hold replies
	lost     bool // its chat's claim went to another replica: left to that one
	seq      int
}

// counters are what the bot counts, for the log at shutdown and for tests.
type counters struct {
	received, duplicates, resumed     atomic.Int64
	sent, retries, ambiguous, crashed atomic.Int64
	dropped, overflowed               atomic.Int64
}

// Stats is a snapshot of the counters.
type Stats struct {
	Received   int64 // updates accepted into the inbox
	Duplicates int64 // updates refused because their id was in the inbox already
	Resumed    int64 // unfinished updates taken up again at start
	Sent       int64 // messages Telegram confirmed
	Retries    int64 // sendMessage attempts repeated
	Ambiguous  int64 // sends whose request left and whose answer was lost: taken as sent
	Crashed    int64 // sends found in flight after a crash: taken as sent
	Dropped    int64 // messages given up after the send deadline (or refused by Telegram)
	Overflowed int64 // updates kept as context only because their chat's queue was full
}

// Stats returns what the bot counted so far.
func (b *Bot) Stats() Stats {
	c := &b.stats
	return Stats{
		Received: c.received.Load(), Duplicates: c.duplicates.Load(), Resumed: c.resumed.Load(),
		Sent: c.sent.Load(), Retries: c.retries.Load(), Ambiguous: c.ambiguous.Load(), Crashed: c.crashed.Load(),
		Dropped: c.dropped.Load(), Overflowed: c.overflowed.Load(),
	}
}

// say sends text to chat (split to Telegram's limit), each piece once over
// every run of the job: the intent is recorded as the request body leaves
// and the message id once Telegram answers. replyTo, when not 0, makes the
// first piece a reply.
func (b *Bot) say(ctx context.Context, j *job, chat telego.Chat, replyTo int, text string) error {
	for i, part := range splitMessage(text, MaxMessageLen) {
		if i > 0 {
			replyTo = 0
		}
		j.seq++
		o := Outgoing{UpdateID: j.in.UpdateID, Seq: j.seq, ChatID: chat.ID, ReplyTo: replyTo, Text: part, State: Sending}
		if err := b.deliver(ctx, j, o, isGroup(chat), b.opts.SendDeadline); err != nil {
			if errors.Is(err, ErrNotOwner) {
				j.lost = true
			}
			return err
		}
	}
	return nil
}

// deliver sends one recorded message unless an earlier run did.
func (b *Bot) deliver(ctx context.Context, j *job, o Outgoing, group bool, deadline time.Duration) error {
	var prev Outgoing
	var found bool
	if j.resumed { // an update accepted by this run has an empty outbox
		var err error
		if prev, found, err = b.store.Outgoing(ctx, o.UpdateID, o.Seq); err != nil {
			return err
		}
	}
	if found {
		switch prev.State {
		case Sent:
			return nil
		case Sending:
			// The process died with this request perhaps on its way: the one
			// window where a reply can be lost (docs/reliability.md).
			b.stats.crashed.Add(1)
			b.log.Warn("a reply was being sent when the bot stopped; taken as sent, it may be lost",
				"chat_id", prev.ChatID, "update_id", o.UpdateID, "reply_to", prev.ReplyTo)
			prev.State = Sent
			return b.store.Record(ctx, prev)
		}
		o.Text, o.ReplyTo = prev.Text, prev.ReplyTo // the first run's words (planned: never left)
	}
	// The intent is recorded as the body leaves, not before the request:
	// a crash before that point leaves no record (or a planned one), and
	// the message is sent after the restart; only a crash between the
	// record and the last byte reaching the socket can lose it.
	keep := context.WithoutCancel(ctx) // the outcome is recorded even on shutdown
	// Copies: leaving runs in the HTTP transport's goroutine.
	inFlight, planned := o, o
	inFlight.State, planned.State = Sending, Planned
	hooks := outboxHooks{
		leaving: func() error { return b.store.Record(ctx, inFlight) },
		back:    func() error { return b.store.Record(keep, planned) },
	}
	id, err := b.send.send(ctx, sendParams{chatID: o.ChatID, group: group, replyTo: o.ReplyTo, text: o.Text}, deadline, hooks)
	switch {
	case err == nil:
		b.stats.sent.Add(1)
		o.State, o.MessageID = Sent, id
		return b.store.Record(keep, o)
	case errors.Is(err, errAmbiguous):
		b.stats.ambiguous.Add(1)
		b.log.Warn("a reply's answer was lost after it reached Telegram; taken as sent", "chat_id", o.ChatID, "err", err)
		o.State = Sent
		return b.store.Record(keep, o)
	}
	return err
}

// reply answers msg in its chat (as a reply in groups) and says whether it
// went out. After the send deadline the user gets the apology if it can be
// sent, and the drop is logged and counted.
func (b *Bot) reply(ctx context.Context, j *job, msg *telego.Message, text string) bool {
	replyTo := 0
	if isGroup(msg.Chat) {
		replyTo = msg.MessageID
	}
	err := b.say(ctx, j, msg.Chat, replyTo, text)
	if err == nil || ctx.Err() != nil {
		return err == nil // on shutdown the update stays in the inbox for the next start
	}
	if j.lost {
		b.log.Warn("the chat went to another replica; it answers this update", "chat_id", msg.Chat.ID, "update_id", j.in.UpdateID)
		return false
	}
	b.stats.dropped.Add(1)
	b.log.Error("a reply was dropped", "chat_id", msg.Chat.ID, "update_id", j.in.UpdateID, "err", err)
	if text != b.opts.Texts.Apology {
		j.seq++
		o := Outgoing{UpdateID: j.in.UpdateID, Seq: j.seq, ChatID: msg.Chat.ID, ReplyTo: replyTo, Text: b.opts.Texts.Apology}
		if aerr := b.deliver(ctx, j, o, isGroup(msg.Chat), b.opts.ApologyDeadline); aerr != nil && ctx.Err() == nil {
			b.log.Error("the apology could not be sent either", "chat_id", msg.Chat.ID, "err", aerr)
		}
	}
	return false
}
