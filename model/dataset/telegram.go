package dataset

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// TelegramOptions say which chats and messages of an export become dialogue.
type TelegramOptions struct {
	Chat          string    // chat name or id in a full-account export; "" means every chat
	KeepForwarded bool      // forwarded messages are someone else's words, so dropped by default
	Media         MediaMode // what a message with only media (no caption) becomes
	Anonymize     bool      // replace phone numbers, e-mails and links with placeholders
}

// ReadStats counts what reading an export kept and skipped.
type ReadStats struct {
	Chats    int            `json:"chats"`
	Messages int            `json:"messages"` // messages kept as dialogue text
	Skipped  map[string]int `json:"skipped"`  // by reason: service, forwarded, media, empty
}

func (s *ReadStats) skip(reason string) {
	if s.Skipped == nil {
		s.Skipped = map[string]int{}
	}
	s.Skipped[reason]++
}

// PositionError is a malformed or truncated input with the byte offset where
// reading stopped, so a user can find the spot in a file of hundreds of MB.
type PositionError struct {
	Offset int64
	What   string
	Err    error
}

func (e *PositionError) Error() string {
	return fmt.Sprintf("%s at byte %d: %v", e.What, e.Offset, e.Err)
}

func (e *PositionError) Unwrap() error { return e.Err }

// ReadTelegram stream-parses a Telegram Desktop JSON export (a single chat
// with "messages" at the top, or a full account with "chats": {"list": [...]})
// and calls each once per selected chat, in file order. Only one chat's
// reduced messages are held at a time; the JSON itself is never loaded whole.
func ReadTelegram(r io.Reader, opt TelegramOptions, each func(Chat) error) (ReadStats, error) {
	in := &countingReader{r: skipBOM(r)}
	p := &tgParser{dec: json.NewDecoder(in), in: in, opt: opt, each: each}
	if err := p.document(); err != nil {
		return p.stats, err
	}
	if p.stats.Chats == 0 && opt.Chat != "" {
		return p.stats, fmt.Errorf("chat %q not found; chats in the export: %s", opt.Chat, p.chatList())
	}
	return p.stats, nil
}

type tgParser struct {
	dec   *json.Decoder
	in    *countingReader
	opt   TelegramOptions
	each  func(Chat) error
	stats ReadStats
	names []string // every chat seen, for a helpful "not found"
}

// document reads the top-level object: either itself a chat or an account
// holding chats.list (and left_chats.list).
func (p *tgParser) document() error {
	if err := p.expectDelim('{', "not a Telegram export (want a JSON object)"); err != nil {
		return err
	}
	var top Chat
	sawMessages, sawChats := false, false
	for p.dec.More() {
		key, err := p.key()
		if err != nil {
			return err
		}
		switch key {
		case "chats", "left_chats":
			sawChats = true
			err = p.chatsObject()
		case "messages":
			sawMessages = true
			err = p.chatField(&top, key)
		default:
			err = p.chatField(&top, key)
		}
		if err != nil {
			return err
		}
	}
	if err := p.expectDelim('}', "malformed JSON"); err != nil {
		return err
	}
	if err := p.expectEnd(); err != nil {
		return err
	}
	if !sawMessages && !sawChats {
		return errors.New("not a Telegram Desktop export: no \"messages\" and no \"chats\"")
	}
	if sawMessages {
		return p.emit(top)
	}
	return nil
}

// chatsObject reads {"about": ..., "list": [chat, ...]}.
func (p *tgParser) chatsObject() error {
	if err := p.expectDelim('{', "malformed chats"); err != nil {
		return err
	}
	for p.dec.More() {
		key, err := p.key()
		if err != nil {
			return err
		}
		if key != "list" {
			err = p.skip()
		} else {
			err = p.chatArray()
		}
		if err != nil {
			return err
		}
	}
	return p.expectDelim('}', "malformed chats")
}

func (p *tgParser) chatArray() error {
	if err := p.expectDelim('[', "malformed chats.list"); err != nil {
		return err
	}
	for p.dec.More() {
		if err := p.chat(); err != nil {
			return err
		}
	}
	return p.expectDelim(']', "malformed chats.list")
}

// chat reads one chat object of chats.list. Its name and id may come after
// its messages, so the choice is made once the object is complete.
func (p *tgParser) chat() error {
	if err := p.expectDelim('{', "malformed chat"); err != nil {
		return err
	}
	var c Chat
	for p.dec.More() {
		key, err := p.key()
		if err != nil {
			return err
		}
		if err := p.chatField(&c, key); err != nil {
			return err
		}
	}
	if err := p.expectDelim('}', "malformed chat"); err != nil {
		return err
	}
	return p.emit(c)
}

// chatField reads the value of one key of a chat object into c.
func (p *tgParser) chatField(c *Chat, key string) error {
	switch key {
	case "name":
		return p.decode(&c.Name)
	case "type":
		return p.decode(&c.Type)
	case "id":
		return p.decode(&c.ID)
	case "messages":
		return p.messages(c)
	}
	return p.skip()
}

func (p *tgParser) emit(c Chat) error {
	p.names = append(p.names, fmt.Sprintf("%q (%d)", c.Name, c.ID))
	if !matchesChat(p.opt.Chat, c) {
		return nil
	}
	p.stats.Chats++
	return p.each(c)
}

func (p *tgParser) chatList() string {
	if len(p.names) > 10 {
		return strings.Join(p.names[:10], ", ") + fmt.Sprintf(" and %d more", len(p.names)-10)
	}
	return strings.Join(p.names, ", ")
}

// messages decodes the array one message at a time, keeping only the
// reduced Message of those that carry dialogue text.
func (p *tgParser) messages(c *Chat) error {
	if err := p.expectDelim('[', "malformed messages"); err != nil {
		return err
	}
	for p.dec.More() {
		start := p.dec.InputOffset()
		var raw tgMessage
		if err := p.decode(&raw); err != nil {
			return err
		}
		m, reason, err := raw.message(p.opt)
		if err != nil {
			return &PositionError{Offset: start, What: fmt.Sprintf("message %d", raw.ID), Err: err}
		}
		if reason != "" {
			p.stats.skip(reason)
			continue
		}
		p.stats.Messages++
		c.Messages = append(c.Messages, m)
	}
	return p.expectDelim(']', "malformed messages")
}
