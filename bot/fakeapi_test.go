package bot

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

// testToken has telego's token format; it must never show up in a log.
const testToken = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456_-"

// botUser is who the fake server says the bot is.
var botUser = telego.User{ID: 999, IsBot: true, FirstName: "Dialog", Username: "DialogTestBot"}

// fault is an error the fake server answers one call with.
type fault struct {
	status     int  // HTTP status and Bot API error_code
	retryAfter int  // seconds, for 429
	network    bool // drop the connection without an answer
}

// sent is one message the bot sent.
type sent struct {
	ChatID  int64
	Text    string
	ReplyTo int
}

// fakeAPI speaks enough of the Bot API over real HTTP for the bot, records
// what it gets, and injects faults. Like Telegram, it forgets updates once a
// getUpdates call confirms them with a higher offset.
type fakeAPI struct {
	t   testing.TB
	srv *httptest.Server

	mu        sync.Mutex
	updates   []telego.Update
	nextID    int
	nextMsgID int
	arrived   chan struct{} // closed and replaced when updates arrive
	sent      []sent
	actions   []int64
	calls     map[string]int
	faults    map[string][]fault
	status    map[[2]int64]string // chat, user -> member status
	webhook   map[string]string
}

func newFakeAPI(t testing.TB) *fakeAPI {
	f := &fakeAPI{
		t: t, nextID: 1, nextMsgID: 1000, arrived: make(chan struct{}),
		calls: map[string]int{}, faults: map[string][]fault{}, status: map[[2]int64]string{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	method, ok := strings.CutPrefix(r.URL.Path, "/bot"+testToken+"/")
	if !ok {
		writeAPIError(w, http.StatusNotFound, 0)
		return
	}
	var params map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&params); err != nil {
		writeAPIError(w, http.StatusBadRequest, 0)
		return
	}
	if flt, ok := f.takeFault(method); ok {
		f.fail(w, flt)
		return
	}
	result, err := f.call(r, method, params)
	if r.Context().Err() != nil {
		return // the client gave up (a long poll cut short by shutdown)
	}
	if err != nil {
		f.t.Errorf("fake api %s: %v", method, err)
		writeAPIError(w, http.StatusBadRequest, 0)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

func (f *fakeAPI) call(r *http.Request, method string, p map[string]json.RawMessage) (any, error) {
	switch method {
	case "getMe":
		return botUser, nil
	case "getUpdates":
		return f.getUpdates(r, p)
	case "sendMessage":
		return f.sendMessage(p)
	case "sendChatAction":
		f.mu.Lock()
		defer f.mu.Unlock()
		f.actions = append(f.actions, intParam(p, "chat_id"))
		return true, nil
	case "getChatMember":
		return f.getChatMember(p), nil
	case "setWebhook":
		f.mu.Lock()
		defer f.mu.Unlock()
		f.webhook = map[string]string{"url": strParam(p, "url"), "secret_token": strParam(p, "secret_token")}
		return true, nil
	case "deleteWebhook":
		return true, nil
	}
	return nil, fmt.Errorf("unexpected method %s", method)
}

func (f *fakeAPI) takeFault(method string) (fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	q := f.faults[method]
	if len(q) == 0 {
		return fault{}, false
	}
	f.faults[method] = q[1:]
	return q[0], true
}

func (f *fakeAPI) fail(w http.ResponseWriter, flt fault) {
	if flt.network {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	writeAPIError(w, flt.status, flt.retryAfter)
}

func writeAPIError(w http.ResponseWriter, status, retryAfter int) {
	body := map[string]any{"ok": false, "error_code": status, "description": http.StatusText(status)}
	if retryAfter > 0 {
		body["parameters"] = map[string]int{"retry_after": retryAfter}
		body["description"] = fmt.Sprintf("Too Many Requests: retry after %d", retryAfter)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// getUpdates long-polls like Telegram: it drops what offset confirms and
// waits up to timeout for something new.
func (f *fakeAPI) getUpdates(r *http.Request, p map[string]json.RawMessage) ([]telego.Update, error) {
	offset, timeout := int(intParam(p, "offset")), time.Duration(intParam(p, "timeout"))*time.Second
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		for len(f.updates) > 0 && f.updates[0].UpdateID < offset {
			f.updates = f.updates[1:]
		}
		pending, arrived := append([]telego.Update(nil), f.updates...), f.arrived
		f.mu.Unlock()
		if len(pending) > 0 || timeout == 0 {
			return pending, nil
		}
		select {
		case <-arrived:
		case <-deadline.C:
			return []telego.Update{}, nil
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
}

func (f *fakeAPI) sendMessage(p map[string]json.RawMessage) (telego.Message, error) {
	s := sent{ChatID: intParam(p, "chat_id"), Text: strParam(p, "text")}
	if raw, ok := p["reply_parameters"]; ok {
		var rp struct {
			MessageID int `json:"message_id"`
		}
		if err := json.Unmarshal(raw, &rp); err != nil {
			return telego.Message{}, err
		}
		s.ReplyTo = rp.MessageID
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, s)
	f.nextMsgID++
	return telego.Message{MessageID: f.nextMsgID, From: &botUser, Chat: telego.Chat{ID: s.ChatID, Type: "private"}, Text: s.Text}, nil
}

func (f *fakeAPI) getChatMember(p map[string]json.RawMessage) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	user := intParam(p, "user_id")
	status, ok := f.status[[2]int64{intParam(p, "chat_id"), user}]
	if !ok {
		status = telego.MemberStatusMember
	}
	return map[string]any{"status": status, "user": map[string]any{"id": user, "is_bot": false, "first_name": "U"}}
}

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

// push queues updates for getUpdates, giving each an id.
func (f *fakeAPI) push(msgs ...*telego.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range msgs {
		f.updates = append(f.updates, telego.Update{UpdateID: f.nextID, Message: m})
		f.nextID++
	}
	close(f.arrived)
	f.arrived = make(chan struct{})
}

func (f *fakeAPI) inject(method string, faults ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[method] = append(f.faults[method], faults...)
}

func (f *fakeAPI) setStatus(chatID, userID int64, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status[[2]int64{chatID, userID}] = status
}

func (f *fakeAPI) sentTo(chatID int64) []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sent
	for _, s := range f.sent {
		if s.ChatID == chatID {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeAPI) allSent() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sent(nil), f.sent...)
}

func (f *fakeAPI) callCount(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *fakeAPI) actionsIn(chatID int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, id := range f.actions {
		if id == chatID {
			n++
		}
	}
	return n
}

func (f *fakeAPI) webhookParams() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.webhook
}
