// Package telegramtest is a fake Telegram Bot API server for tests: it
// speaks enough of the Bot API over real HTTP (getMe, getUpdates,
// sendMessage, sendChatAction, getChatMember, setWebhook, deleteWebhook) for
// a telego bot, records what the bot sends and injects faults (429 with
// retry_after, server errors, dropped connections).
package telegramtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mymmrac/telego"
)

// Token has telego's token format (digits, a colon, 35 characters); it is
// the only token the server accepts, and it must never show up in a log.
const Token = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456_-"

// BotUser is who the server says the bot is (getMe).
var BotUser = telego.User{ID: 999, IsBot: true, FirstName: "Dialog", Username: "DialogTestBot"}

// Server is the fake Bot API; its URL is the bot's API server. Like
// Telegram, it forgets updates once a getUpdates call confirms them with a
// higher offset.
type Server struct {
	*httptest.Server
	tb testing.TB

	mu        sync.Mutex
	requests  int
	updates   []telego.Update
	raw       map[int]json.RawMessage // update id -> body sent instead of the update (PushRaw)
	nextID    int
	nextMsgID int
	arrived   chan struct{} // closed and replaced when updates arrive
	changed   chan struct{} // closed and replaced when a message is sent
	sent      []Sent
	actions   []int64
	calls     map[string]int
	faults    map[string][]Fault
	status    map[[2]int64]string // chat, user -> member status
	webhook   map[string]string
	failText  map[string]int // sendMessage text -> status it always fails with
	delay     map[string]time.Duration
}

// New starts a server that is closed when the test ends. A call it cannot
// answer (an unknown method, bad parameters) fails the test.
func New(tb testing.TB) *Server {
	s := &Server{
		tb: tb, nextID: 1, nextMsgID: 1000, arrived: make(chan struct{}), changed: make(chan struct{}),
		raw: map[int]json.RawMessage{}, calls: map[string]int{}, faults: map[string][]Fault{}, status: map[[2]int64]string{},
		failText: map[string]int{}, delay: map[string]time.Duration{},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.count()
	method, ok := strings.CutPrefix(r.URL.Path, "/bot"+Token+"/")
	if !ok {
		writeAPIError(w, http.StatusNotFound, 0) // Telegram's answer to an unknown token
		return
	}
	flt, faulty := s.takeFault(method)
	if faulty && flt.ResetBefore {
		flt.write(w) // before the body is read, so no 100 Continue goes out
		return
	}
	var params map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&params); err != nil {
		writeAPIError(w, http.StatusBadRequest, 0)
		return
	}
	if status := s.textFault(method, params); status != 0 && !faulty {
		flt, faulty = Fault{Status: status}, true
	}
	if faulty && !flt.ResetAfter {
		flt.write(w)
		return
	}
	result, err := s.call(r, method, params)
	if r.Context().Err() != nil {
		return // the client gave up (a long poll cut short by shutdown)
	}
	if err != nil {
		s.tb.Errorf("telegramtest: %s: %v", method, err)
		writeAPIError(w, http.StatusBadRequest, 0)
		return
	}
	if faulty {
		flt.write(w) // acted on, answer lost
		return
	}
	s.wait(r, method)
	json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

func (s *Server) textFault(method string, p map[string]json.RawMessage) int {
	if method != "sendMessage" {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failText[strParam(p, "text")]
}

// SetDelay makes the server answer method d after acting on it, as a slow
// server does (a client giving up meanwhile does not undo the call).
func (s *Server) SetDelay(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay[method] = d
}

func (s *Server) wait(r *http.Request, method string) {
	s.mu.Lock()
	d := s.delay[method]
	s.mu.Unlock()
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

func (s *Server) count() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
}

func (s *Server) call(r *http.Request, method string, p map[string]json.RawMessage) (any, error) {
	switch method {
	case "getMe":
		return BotUser, nil
	case "getUpdates":
		return s.getUpdates(r, p)
	case "sendMessage":
		return s.sendMessage(p)
	case "sendChatAction":
		s.recordAction(intParam(p, "chat_id"))
		return true, nil
	case "getChatMember":
		return s.getChatMember(p), nil
	case "setWebhook":
		s.setWebhook(p)
		return true, nil
	case "deleteWebhook":
		return true, nil
	}
	return nil, fmt.Errorf("unexpected method %s", method)
}
