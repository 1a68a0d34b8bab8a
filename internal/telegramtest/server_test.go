package telegramtest

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mymmrac/telego"
	ta "github.com/mymmrac/telego/telegoapi"
)

// client is a telego bot that talks to s with net/http and no retries.
func client(tb testing.TB, s *Server, token string) *telego.Bot {
	tb.Helper()
	b, err := telego.NewBot(token, telego.WithAPIServer(s.URL), telego.WithHTTPClient(s.Client()), telego.WithDiscardLogger())
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func send(b *telego.Bot, chatID int64, text string, replyTo int) error {
	p := &telego.SendMessageParams{ChatID: telego.ChatID{ID: chatID}, Text: text}
	if replyTo != 0 {
		p.ReplyParameters = &telego.ReplyParameters{MessageID: replyTo}
	}
	_, err := b.SendMessage(context.Background(), p)
	return err
}

func TestRecordsWhatIsSent(t *testing.T) {
	s := New(t)
	b := client(t, s, Token)
	me, err := b.GetMe(context.Background())
	if err != nil || me.Username != BotUser.Username {
		t.Fatalf("getMe = %v, %v; want %s", me, err, BotUser.Username)
	}
	for _, m := range []Sent{{ChatID: 1, Text: "a"}, {ChatID: 2, Text: "b", ReplyTo: 7}, {ChatID: 1, Text: "c"}} {
		if err := send(b, m.ChatID, m.Text, m.ReplyTo); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := s.WaitSent(t, 1, 2), []Sent{{ChatID: 1, Text: "a"}, {ChatID: 1, Text: "c"}}; !slices.Equal(got, want) {
		t.Errorf("chat 1 got %+v, want %+v", got, want)
	}
	if got := s.SentTo(2); len(got) != 1 || got[0].ReplyTo != 7 {
		t.Errorf("chat 2 got %+v, want one reply to message 7", got)
	}
	if err := b.SendChatAction(context.Background(), &telego.SendChatActionParams{ChatID: telego.ChatID{ID: 2}, Action: telego.ChatActionTyping}); err != nil {
		t.Fatal(err)
	}
	if s.ActionsIn(2) != 1 || s.ActionsIn(1) != 0 || s.CallCount("sendMessage") != 3 || len(s.AllSent()) != 3 {
		t.Errorf("actions %d/%d, %d sendMessage calls, %d sent", s.ActionsIn(2), s.ActionsIn(1), s.CallCount("sendMessage"), len(s.AllSent()))
	}
}

func TestUpdatesAreForgottenOnceConfirmed(t *testing.T) {
	s := New(t)
	b := client(t, s, Token)
	s.Push(&telego.Message{MessageID: 1, Text: "one"}, &telego.Message{MessageID: 2, Text: "two"})
	get := func(offset int) []int {
		ups, err := b.GetUpdates(context.Background(), &telego.GetUpdatesParams{Offset: offset})
		if err != nil {
			t.Fatal(err)
		}
		var ids []int
		for _, u := range ups {
			ids = append(ids, u.UpdateID)
		}
		return ids
	}
	steps := []struct {
		name   string
		offset int
		want   []int
	}{
		{"all pending", 0, []int{1, 2}},
		{"first confirmed", 2, []int{2}},
		{"both confirmed", 3, nil},
		{"confirmed stay gone", 0, nil},
	}
	for _, st := range steps {
		if got := get(st.offset); !slices.Equal(got, st.want) {
			t.Errorf("%s: update ids %v, want %v", st.name, got, st.want)
		}
	}
}

func TestFaults(t *testing.T) {
	s := New(t)
	b := client(t, s, Token)
	s.Inject("sendMessage", Fault{Status: http.StatusTooManyRequests, RetryAfter: 3}, Fault{Network: true}, Fault{Status: http.StatusBadGateway})

	var apiErr *ta.Error
	if err := send(b, 1, "a", 0); !errors.As(err, &apiErr) || apiErr.ErrorCode != 429 || apiErr.Parameters == nil || apiErr.Parameters.RetryAfter != 3 {
		t.Errorf("first send: %v, want 429 with retry_after 3", err)
	}
	if err := send(b, 1, "b", 0); err == nil || errors.As(err, &apiErr) {
		t.Errorf("second send: %v, want a network error", err)
	}
	// telego reports a 5xx without reading the body
	if err := send(b, 1, "c", 0); err == nil || !strings.Contains(err.Error(), "502") {
		t.Errorf("third send: %v, want 502", err)
	}
	if err := send(b, 1, "d", 0); err != nil {
		t.Errorf("fourth send: %v, want success once the faults are used up", err)
	}
	if got := s.SentTo(1); len(got) != 1 || got[0].Text != "d" || s.CallCount("sendMessage") != 4 {
		t.Errorf("sent %+v after %d calls, want only d after 4", got, s.CallCount("sendMessage"))
	}
}

func TestOtherTokenIsRefused(t *testing.T) {
	s := New(t)
	other := "654321:ABCdefGHIjklMNOpqrSTUvwxYZ0123456_-"
	_, err := client(t, s, other).GetMe(context.Background())
	var apiErr *ta.Error
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != http.StatusNotFound {
		t.Errorf("getMe with another token: %v, want 404", err)
	}
	if s.Requests() != 1 || s.CallCount("getMe") != 0 {
		t.Errorf("%d requests, %d getMe calls; want 1 request and no call", s.Requests(), s.CallCount("getMe"))
	}
}

func TestMembersAndWebhook(t *testing.T) {
	s := New(t)
	b := client(t, s, Token)
	s.SetStatus(-5, 2, telego.MemberStatusAdministrator)
	tests := []struct {
		name string
		user int64
		want string
	}{
		{"set status", 2, telego.MemberStatusAdministrator},
		{"default", 3, telego.MemberStatusMember},
	}
	for _, tc := range tests {
		m, err := b.GetChatMember(context.Background(), &telego.GetChatMemberParams{ChatID: telego.ChatID{ID: -5}, UserID: tc.user})
		if err != nil || m.MemberStatus() != tc.want {
			t.Errorf("%s: %v, %v; want %s", tc.name, m, err, tc.want)
		}
	}
	if s.Webhook() != nil {
		t.Errorf("webhook set before setWebhook")
	}
	if err := b.SetWebhook(context.Background(), &telego.SetWebhookParams{URL: "https://example.org/h", SecretToken: "s"}); err != nil {
		t.Fatal(err)
	}
	if got := s.Webhook(); got["url"] != "https://example.org/h" || got["secret_token"] != "s" {
		t.Errorf("webhook %v", got)
	}
}

// The resets differ in whether the request was acted on; a client sending
// "Expect: 100-continue" can tell ResetBefore apart, since its body is
// never asked for.
func TestResetFaults(t *testing.T) {
	s := New(t)
	s.Inject("sendMessage", Fault{ResetBefore: true}, Fault{Network: true}, Fault{ResetAfter: true}, Fault{HTML: true})
	// Without ExpectContinueTimeout the transport sends the body at once.
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
	post := func(text string) (bodySent bool, status int, err error) {
		body := &readTracker{r: strings.NewReader(`{"chat_id": 1, "text": "` + text + `"}`)}
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/bot"+Token+"/sendMessage", body)
		req.ContentLength = int64(body.r.Len())
		req.Header.Set("Expect", "100-continue")
		resp, err := client.Do(req)
		if err != nil {
			return body.done.Load(), 0, err
		}
		resp.Body.Close()
		return true, resp.StatusCode, nil // answered: the body was read
	}
	tests := []struct {
		text     string
		bodySent bool
		fails    bool
	}{
		{"before", false, true},
		{"network", true, true},
		{"after", true, true},
		{"html", true, false},
		{"ok", true, false},
	}
	for _, tc := range tests {
		sent, _, err := post(tc.text)
		if sent != tc.bodySent || (err != nil) != tc.fails {
			t.Errorf("%s: body sent %v, err %v; want sent %v, failure %v", tc.text, sent, err, tc.bodySent, tc.fails)
		}
	}
	if got := texts(s.AllSent()); !slices.Equal(got, []string{"after", "ok"}) {
		t.Errorf("recorded %q, want only the reset-after and the good one", got)
	}
}

// readTracker tells whether the transport took the whole body.
type readTracker struct {
	r    *strings.Reader
	done atomic.Bool
}

func (b *readTracker) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.r.Len() == 0 {
		b.done.Store(true)
	}
	return n, err
}

func texts(sent []Sent) []string {
	var out []string
	for _, m := range sent {
		out = append(out, m.Text)
	}
	return out
}
