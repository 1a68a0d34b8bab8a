package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dialogbot/dialogbot/model/dialog"
)

// Storage is everything the bot keeps across restarts: the chats (histories
// and settings) and the inbox. It is owned here, by its one consumer, so that
// a second store (PostgreSQL, for replicas) plugs in through Options.Store
// without the handlers changing. Every method must be durable on return.
type Storage interface {
	Chats
	Inbox
	Close() error
}

// Chats are the dialogue histories and per-chat settings.
type Chats interface {
	// History is a chat's kept turns, oldest first, without the turns that
	// update exceptUpdate added (0: all): an update handled again after a
	// crash must not see its own message twice.
	History(ctx context.Context, chatID int64, exceptUpdate int) ([]dialog.Turn, error)
	// Append adds a turn. With a non-zero updateID it adds the update's turn
	// of that speaker only once, however often it is called.
	Append(ctx context.Context, chatID int64, updateID int, t dialog.Turn) error
	Reset(ctx context.Context, chatID int64) error
	Chance(ctx context.Context, chatID int64) (percent int, ok bool, err error)
	SetChance(ctx context.Context, chatID int64, percent int) error
}

// Inbox holds every update from the moment it is accepted (before Telegram
// is told it arrived) until its replies are sent and recorded, and the
// replies themselves: the intent to send one is recorded before the request,
// its message id after, so that an update handled again after a crash never
// sends a reply twice.
type Inbox interface {
	// Accept stores the updates not seen before (the update id is unique)
	// and returns those; the rest are duplicates.
	Accept(ctx context.Context, updates []Incoming) (fresh []Incoming, err error)
	// Unfinished is every accepted update not yet finished, oldest first.
	Unfinished(ctx context.Context) ([]Incoming, error)
	// SetAnswer records the generated answer to an update before any of it
	// is sent, so that handling it again sends the same text.
	SetAnswer(ctx context.Context, updateID int, answer string) error
	// Finish marks an update done with how it ended and forgets its outbox.
	Finish(ctx context.Context, updateID int, outcome string) error
	// Outgoing is the reply recorded as the seq-th message of an update.
	Outgoing(ctx context.Context, updateID, seq int) (Outgoing, bool, error)
	// Record writes a reply's state (insert or update).
	Record(ctx context.Context, o Outgoing) error
	// Prune forgets finished updates older than before; their ids are then
	// no longer recognised as duplicates.
	Prune(ctx context.Context, before time.Time) (int, error)
	// Depth counts the updates the inbox holds in each state (for /metrics).
	Depth(ctx context.Context) (InboxDepth, error)
}

// InboxDepth is how many updates the inbox holds in each state.
type InboxDepth struct {
	Waiting  int64 // accepted, no answer generated yet
	Answered int64 // answer generated and recorded, not all of it sent yet
	Finished int64 // done; kept until pruned to refuse Telegram's redeliveries
}

// Incoming is an accepted update: its id, its chat (0 for none), its JSON
// as Telegram sent it, and the answer generated for it, once there is one.
type Incoming struct {
	UpdateID int
	ChatKey  int64
	Body     json.RawMessage
	Answer   string
}

// SendState is how far a reply got.
type SendState string

const (
	// Planned: not being sent; sending it cannot repeat it.
	Planned SendState = "planned"
	// Sending: a request may be on its way. Found after a crash, it is
	// taken as sent: see docs/reliability.md for why loss, not duplicate.
	Sending SendState = "sending"
	// Sent: Telegram answered with the message id (0 when the answer was
	// lost after the request reached Telegram: an ambiguous send).
	Sent SendState = "sent"
)

// Outgoing is one message sent while handling an update, the seq-th.
type Outgoing struct {
	UpdateID, Seq int
	ChatID        int64
	ReplyTo       int
	Text          string
	State         SendState
	MessageID     int
}

// Speakers are stored as these words, never as the enum's numbers, so that
// reordering dialog.Speaker cannot swap who said what.
const (
	speakerUser = "user"
	speakerBot  = "bot"
)

// SpeakerName is how a store writes a speaker.
func SpeakerName(s dialog.Speaker) (string, error) {
	switch s {
	case dialog.User:
		return speakerUser, nil
	case dialog.Bot:
		return speakerBot, nil
	}
	return "", fmt.Errorf("unknown speaker %d", s)
}

// ParseSpeaker reads a speaker a store wrote with SpeakerName.
func ParseSpeaker(name string) (dialog.Speaker, error) {
	switch name {
	case speakerUser:
		return dialog.User, nil
	case speakerBot:
		return dialog.Bot, nil
	}
	return 0, fmt.Errorf("unknown stored speaker %q", name)
}

// Claims is implemented by a Storage that several replicas share. A chat is
// served by one replica at a time: the one holding its claim, which expires
// unless renewed, so that a replica that died has its chats taken over.
type Claims interface {
	// Claim takes up to limit more chats that have unfinished updates and
	// no live claim, for ttl, and returns the unfinished updates of every
	// chat this replica holds, oldest first.
	Claim(ctx context.Context, ttl time.Duration, limit int) ([]Incoming, error)
	// Renew extends this replica's claims by ttl from now, expired ones
	// that no other replica took meanwhile included.
	Renew(ctx context.Context, ttl time.Duration) error
	// Release gives up this replica's claim on a chat unless updates of it
	// are still unfinished.
	Release(ctx context.Context, chatKey int64) error
	// ReleaseAll gives up every claim of this replica, which stops: the
	// others take its chats at once instead of after the claims expire.
	ReleaseAll(ctx context.Context) error
	// Pending says whether an update is still unfinished (a claimed update
	// may be finished by the time its turn comes).
	Pending(ctx context.Context, updateID int) (bool, error)
}

// ErrNotOwner is what a shared store's Record returns for a send whose
// chat this replica no longer holds: another replica handles the update
// now, and this one must not send.
var ErrNotOwner = errors.New("the chat's claim is held by another replica")
