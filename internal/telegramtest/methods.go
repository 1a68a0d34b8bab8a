package telegramtest

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/mymmrac/telego"
)

// getUpdates long-polls like Telegram: it drops what offset confirms and
// waits up to timeout for something new.
func (s *Server) getUpdates(r *http.Request, p map[string]json.RawMessage) ([]any, error) {
	offset, timeout := int(intParam(p, "offset")), time.Duration(intParam(p, "timeout"))*time.Second
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for len(s.updates) > 0 && s.updates[0].UpdateID < offset {
			s.updates = s.updates[1:]
		}
		pending, arrived := s.pendingLocked(), s.arrived
		s.mu.Unlock()
		if len(pending) > 0 || timeout == 0 {
			return pending, nil
		}
		select {
		case <-arrived:
		case <-deadline.C:
			return []any{}, nil
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
}

// pendingLocked is the queued updates as getUpdates answers them.
func (s *Server) pendingLocked() []any {
	out := make([]any, len(s.updates))
	for i, u := range s.updates {
		if raw, ok := s.raw[u.UpdateID]; ok {
			out[i] = raw
		} else {
			out[i] = u
		}
	}
	return out
}

func (s *Server) sendMessage(p map[string]json.RawMessage) (telego.Message, error) {
	m := Sent{ChatID: intParam(p, "chat_id"), Text: strParam(p, "text")}
	if raw, ok := p["reply_parameters"]; ok {
		var rp struct {
			MessageID int `json:"message_id"`
		}
		if err := json.Unmarshal(raw, &rp); err != nil {
			return telego.Message{}, err
		}
		m.ReplyTo = rp.MessageID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, m)
	s.nextMsgID++
	close(s.changed)
	s.changed = make(chan struct{})
	return telego.Message{MessageID: s.nextMsgID, From: &BotUser, Chat: telego.Chat{ID: m.ChatID, Type: "private"}, Text: m.Text}, nil
}

func (s *Server) getChatMember(p map[string]json.RawMessage) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	user := intParam(p, "user_id")
	status, ok := s.status[[2]int64{intParam(p, "chat_id"), user}]
	if !ok {
		status = telego.MemberStatusMember
	}
	return map[string]any{"status": status, "user": map[string]any{"id": user, "is_bot": false, "first_name": "U"}}
}

func (s *Server) recordAction(chatID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actions = append(s.actions, chatID)
}

// setWebhook keeps the parameters as strings; allowed_updates as its JSON.
func (s *Server) setWebhook(p map[string]json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhook = map[string]string{"url": strParam(p, "url"), "secret_token": strParam(p, "secret_token"),
		"allowed_updates": string(p["allowed_updates"]), "max_connections": string(p["max_connections"])}
}

// intParam and strParam read a parameter; a missing or mistyped one reads
// as zero, which the tests' assertions then catch.
func intParam(p map[string]json.RawMessage, key string) int64 {
	var v int64
	json.Unmarshal(p[key], &v)
	return v
}

func strParam(p map[string]json.RawMessage, key string) string {
	var v string
	json.Unmarshal(p[key], &v)
	return v
}
