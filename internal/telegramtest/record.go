package telegramtest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/mymmrac/telego"
)

// Sent is one message the bot sent.
type Sent struct {
	ChatID  int64
	Text    string
	ReplyTo int // reply_parameters.message_id; 0 when not a reply
}

// waitLimit only guards WaitSent against hangs; it is no speed requirement:
// tests wait for events, and a loaded CI machine may take seconds a reply.
const waitLimit = 3 * time.Minute

// Push queues messages as updates for getUpdates, giving each an id.
func (s *Server) Push(msgs ...*telego.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		s.updates = append(s.updates, telego.Update{UpdateID: s.nextID, Message: m})
		s.nextID++
	}
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// PushRaw queues an update given as the JSON of its fields after update_id
// (say `"message": {...}`), such as one the bot's Telegram library cannot
// decode; it returns the update's id.
func (s *Server) PushRaw(fields string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID
	s.nextID++
	s.updates = append(s.updates, telego.Update{UpdateID: id})
	s.raw[id] = json.RawMessage(fmt.Sprintf(`{"update_id": %d, %s}`, id, fields))
	close(s.arrived)
	s.arrived = make(chan struct{})
	return id
}

// PushRawWithID queues an update with a given id (one Telegram sends again,
// say) given as the JSON of its fields after update_id.
func (s *Server) PushRawWithID(id int, fields string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updates = append(s.updates, telego.Update{UpdateID: id})
	s.raw[id] = json.RawMessage(fmt.Sprintf(`{"update_id": %d, %s}`, id, fields))
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// SetStatus sets a user's member status in a chat (getChatMember); the
// default is member.
func (s *Server) SetStatus(chatID, userID int64, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[[2]int64{chatID, userID}] = status
}

// SentTo is what was sent to a chat, oldest first.
func (s *Server) SentTo(chatID int64) []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sentToLocked(chatID)
}

func (s *Server) sentToLocked(chatID int64) []Sent {
	var out []Sent
	for _, m := range s.sent {
		if m.ChatID == chatID {
			out = append(out, m)
		}
	}
	return out
}

// AllSent is every message sent, oldest first.
func (s *Server) AllSent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// WaitSent waits until at least n messages were sent to a chat and returns
// them; it fails the test if that does not happen within a generous limit.
func (s *Server) WaitSent(tb testing.TB, chatID int64, n int) []Sent {
	tb.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, changed := s.sentToLocked(chatID), s.changed
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline.C:
			tb.Fatalf("telegramtest: %d messages sent to chat %d, want %d: %+v", len(got), chatID, n, got)
		}
	}
}

// WaitAllSent waits until at least n messages were sent over all chats; it
// fails the test if that does not happen within a generous limit.
func (s *Server) WaitAllSent(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.NewTimer(4 * waitLimit)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, changed := len(s.sent), s.changed
		s.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			tb.Fatalf("telegramtest: %d messages sent, want %d", got, n)
		}
	}
}

// CallCount is how often method was called with the right token, faults included.
func (s *Server) CallCount(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Requests is how many HTTP requests arrived, whatever their path or token.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// ActionsIn is how many chat actions ("typing") were sent to a chat.
func (s *Server) ActionsIn(chatID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, id := range s.actions {
		if id == chatID {
			n++
		}
	}
	return n
}

// Webhook is the url, secret_token, allowed_updates and max_connections
// (these two as JSON) of the last setWebhook, nil before one.
func (s *Server) Webhook() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhook
}
