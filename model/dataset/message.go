// Package dataset turns chat logs (Telegram Desktop JSON exports and
// dialogue CSVs) into tokenized training examples in the prompt format of
// serving (model/prompt.go), written in a small binary format that the
// Python fine-tuning script reads with numpy (FORMAT.md).
package dataset

import (
	"strconv"
	"strings"
	"time"
)

// Message is one chat message reduced to what dialogues need. Only the
// messages of the chat being converted are kept, never the raw JSON.
type Message struct {
	ID       int64
	Time     time.Time
	SenderID string // "user123" (newer exports) or the numeric id of older ones
	Sender   string // display name; may be empty for deleted accounts
	Text     string
	ReplyTo  int64 // 0 when not a reply
}

// Chat is one conversation of an export.
type Chat struct {
	ID       int64
	Name     string
	Type     string
	Messages []Message
}

// senderKey identifies a sender: the id when the export has one, else the name.
func (m Message) senderKey() string {
	if m.SenderID != "" {
		return m.SenderID
	}
	return m.Sender
}

// matchesSender reports whether who (a --speaker or --chat style value: a
// name, "user123" or "123") names this sender.
func matchesSender(who, id, name string) bool {
	if who == "" {
		return true
	}
	if strings.EqualFold(who, name) || who == id {
		return true
	}
	return strings.TrimLeft(id, "abcdefghijklmnopqrstuvwxyz") == who && who != ""
}

// matchesChat reports whether sel (a --chat value) names the chat.
func matchesChat(sel string, c Chat) bool {
	return sel == "" || strings.EqualFold(sel, c.Name) || sel == strconv.FormatInt(c.ID, 10)
}
