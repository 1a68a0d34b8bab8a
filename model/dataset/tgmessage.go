package dataset

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MediaMode says what a media message without a caption becomes.
type MediaMode string

const (
	MediaDrop        MediaMode = "drop"        // skip it
	MediaPlaceholder MediaMode = "placeholder" // "[photo]", "[voice_message]", ...
)

// ParseMediaMode checks a --media value.
func ParseMediaMode(s string) (MediaMode, error) {
	switch m := MediaMode(s); m {
	case MediaDrop, MediaPlaceholder:
		return m, nil
	case "":
		return MediaDrop, nil
	}
	return "", fmt.Errorf("unknown media mode %q (want %q or %q)", s, MediaDrop, MediaPlaceholder)
}

// tgMessage is one element of "messages" as exports write it. Edited
// messages already hold their final text ("edited" is only the edit time),
// and the send time ("date") orders them, so edits need no special field.
type tgMessage struct {
	ID            int64           `json:"id"`
	Type          string          `json:"type"`
	Date          string          `json:"date"`
	DateUnix      string          `json:"date_unixtime"`
	From          string          `json:"from"`
	FromID        json.RawMessage `json:"from_id"` // "user123" (newer) or 123 (older)
	Text          tgText          `json:"text"`
	TextEntities  tgText          `json:"text_entities"`
	ReplyTo       int64           `json:"reply_to_message_id"`
	ForwardedFrom json.RawMessage `json:"forwarded_from"` // present, even null, when forwarded
	StickerEmoji  string          `json:"sticker_emoji"`
	MediaType     string          `json:"media_type"`
	Photo         json.RawMessage `json:"photo"`
	File          json.RawMessage `json:"file"`
}

// tgEntity is a piece of text: plain, or typed (bold, link, phone, ...).
type tgEntity struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// tgText is "text" (a string, or a list of strings and entity objects) or
// "text_entities" (a list of entity objects).
type tgText []tgEntity

func (t *tgText) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*t = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = tgText{{Type: "plain", Text: s}}
		return nil
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil {
		return fmt.Errorf("text: want a string or a list: %w", err)
	}
	*t = make(tgText, len(parts))
	for i, part := range parts {
		if err := (*t)[i].unmarshalPart(part); err != nil {
			return err
		}
	}
	return nil
}

func (e *tgEntity) unmarshalPart(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		e.Type = "plain"
		return json.Unmarshal(b, &e.Text)
	}
	if err := json.Unmarshal(b, e); err != nil {
		return fmt.Errorf("text entity: %w", err)
	}
	return nil
}

// message reduces a raw message to a Message, or says why it is skipped.
func (m *tgMessage) message(opt TelegramOptions) (Message, string, error) {
	if m.Type != "message" {
		return Message{}, "service", nil
	}
	if len(m.ForwardedFrom) > 0 && !opt.KeepForwarded {
		return Message{}, "forwarded", nil
	}
	text := m.text(opt.Anonymize)
	if text == "" {
		text = m.mediaText(opt.Media)
	}
	if text == "" {
		return Message{}, m.emptyReason(), nil
	}
	when, err := m.time()
	if err != nil {
		return Message{}, "", err
	}
	return Message{ID: m.ID, Time: when, SenderID: m.senderID(), Sender: m.From, Text: text, ReplyTo: m.ReplyTo}, "", nil
}

// text joins the entities; text_entities wins when present because only it
// types every piece in newer exports.
func (m *tgMessage) text(anonymize bool) string {
	parts := m.TextEntities
	if len(parts) == 0 {
		parts = m.Text
	}
	var b strings.Builder
	for _, e := range parts {
		if anonymize {
			b.WriteString(anonymizeEntity(e))
		} else {
			b.WriteString(e.Text)
		}
	}
	s := b.String()
	if anonymize {
		s = Anonymize(s)
	}
	return strings.TrimSpace(s)
}

// mediaText is a sticker's emoji, or with MediaPlaceholder a placeholder
// naming the kind of media.
func (m *tgMessage) mediaText(mode MediaMode) string {
	if m.StickerEmoji != "" {
		return m.StickerEmoji
	}
	if mode != MediaPlaceholder {
		return ""
	}
	switch {
	case m.MediaType != "":
		return "[" + m.MediaType + "]"
	case len(m.Photo) > 0:
		return "[photo]"
	case len(m.File) > 0:
		return "[file]"
	}
	return ""
}

func (m *tgMessage) emptyReason() string {
	if m.MediaType != "" || len(m.Photo) > 0 || len(m.File) > 0 {
		return "media"
	}
	return "empty"
}

// senderID normalises from_id: newer exports write "user123", older ones a number.
func (m *tgMessage) senderID() string {
	var s string
	if json.Unmarshal(m.FromID, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(m.FromID, &n) == nil {
		return n.String()
	}
	return ""
}

// time prefers date_unixtime (newer exports); older ones have only the local
// time without a zone, read as UTC: only the gaps between messages matter.
func (m *tgMessage) time() (time.Time, error) {
	if m.DateUnix != "" {
		sec, err := strconv.ParseInt(m.DateUnix, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("bad date_unixtime %q: %w", m.DateUnix, err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	t, err := time.Parse("2006-01-02T15:04:05", m.Date)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad date %q: %w", m.Date, err)
	}
	return t, nil
}
