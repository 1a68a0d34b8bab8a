package bot

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mymmrac/telego"
)

func webhookOptions(t *testing.T, f *fakeAPI) Options {
	opts := testOptions(t, f)
	opts.Mode = ModeWebhook
	opts.WebhookListen = "127.0.0.1:0"
	opts.WebhookPath = "/hook"
	opts.WebhookURL = "https://example.org/hook"
	opts.WebhookSecret = "s3cret-value"
	return opts
}

func postUpdate(t *testing.T, url, secret string, id int, m *telego.Message) int {
	t.Helper()
	body := fmt.Sprintf(`{"update_id": %d, "message": {"message_id": %d, "date": 0, "chat": {"id": %d, "type": "private"}, "from": {"id": %d, "is_bot": false, "first_name": "A"}, "text": %q}}`,
		id, m.MessageID, m.Chat.ID, m.From.ID, m.Text)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	req.Header.Set(telego.WebhookSecretTokenHeader, secret)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// setWebhook asks only for the updates the bot handles, with the configured
// max_connections; a redelivered update is answered once; a body over the
// limit is refused.
func TestWebhookRegistrationAndLimits(t *testing.T) {
	f := newFakeAPI(t)
	opts := webhookOptions(t, f)
	opts.WebhookMaxConnections = 7
	r := startBot(t, f, &recorder{}, opts)
	if got := f.webhookParams(); got["allowed_updates"] != `["message"]` || got["max_connections"] != "7" {
		t.Errorf("setWebhook got %v, want allowed_updates [\"message\"] and max_connections 7", got)
	}
	waitFor(t, "listener", func() bool { return r.bot.WebhookAddr() != nil })
	url := "http://" + r.bot.WebhookAddr().String() + "/hook"
	m := private(42, "hi")
	for range 2 { // Telegram sends it again when it missed our 200
		if got := postUpdate(t, url, opts.WebhookSecret, 5, m); got != http.StatusOK {
			t.Fatalf("status %d", got)
		}
	}
	big := strings.NewReader(`{"update_id": 6, "message": {"text": "` + strings.Repeat("x", maxUpdateSize) + `"}}`)
	req, _ := http.NewRequest(http.MethodPost, url, big)
	req.Header.Set(telego.WebhookSecretTokenHeader, opts.WebhookSecret)
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("an oversized body got %d, want 413", resp.StatusCode)
	}
	postUpdate(t, url, opts.WebhookSecret, 7, private(42, "marker"))
	waitFor(t, "two answers", func() bool { return len(f.sentTo(42)) == 2 })
	r.stop()
	if got := texts(f.sentTo(42)); got[0] != "echo: hi" || got[1] != "echo: marker" {
		t.Errorf("sent %q, want each answer once", got)
	}
	if st := r.bot.Stats(); st.Duplicates != 1 {
		t.Errorf("%d duplicates, want 1", st.Duplicates)
	}
}

// Connections that never send a request cannot lock Telegram out: past the
// bound the longest-idle one is closed to make room.
func TestIdleConnectionsDoNotBlockUpdates(t *testing.T) {
	f := newFakeAPI(t)
	opts := webhookOptions(t, f)
	opts.WebhookMaxOpen = 50
	r := startBot(t, f, &recorder{}, opts)
	waitFor(t, "listener", func() bool { return r.bot.WebhookAddr() != nil })
	addr := r.bot.WebhookAddr().String()
	const idle = 200
	dialIdle(t, addr, idle)
	start := time.Now()
	if got := postUpdate(t, "http://"+addr+"/hook", opts.WebhookSecret, 1, private(42, "real")); got != http.StatusOK {
		t.Fatalf("status %d", got)
	}
	waitFor(t, "the answer", func() bool { return len(f.sentTo(42)) == 1 })
	t.Logf("answered %v after the post, with %d idle connections opened", time.Since(start), idle)
	r.stop()
	// Each connection past the bound pushed out an idle one.
	if n := r.bot.shedConns(); n < idle-opts.WebhookMaxOpen {
		t.Errorf("%d idle connections closed, want at least %d", n, idle-opts.WebhookMaxOpen)
	}
}

// TestIdleConnectionsUnderFDLimit measures the delay of a real update while
// DIALOGBOT_IDLE_CONNS idle connections are open and the process may hold
// only those plus 400 file descriptors: without the guard the server would
// need one per connection and stop accepting. Skipped unless that is set.
func TestIdleConnectionsUnderFDLimit(t *testing.T) {
	idle, _ := strconv.Atoi(os.Getenv("DIALOGBOT_IDLE_CONNS"))
	if idle <= 0 {
		t.Skip("set DIALOGBOT_IDLE_CONNS=N to measure with N idle connections")
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = uint64(idle + 400) // the client's ends, the guard's 256 and the rest
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	f := newFakeAPI(t)
	opts := webhookOptions(t, f)
	if os.Getenv("DIALOGBOT_IDLE_GUARD") == "off" { // to see what the guard spares
		opts.WebhookMaxOpen = 1 << 30
	}
	r := startBot(t, f, &recorder{}, opts)
	waitFor(t, "listener", func() bool { return r.bot.WebhookAddr() != nil })
	addr := r.bot.WebhookAddr().String()
	dialIdle(t, addr, idle)
	for i := range 5 {
		start := time.Now()
		if got := postUpdate(t, "http://"+addr+"/hook", opts.WebhookSecret, i+1, private(42, fmt.Sprint("real ", i))); got != http.StatusOK {
			t.Fatalf("status %d", got)
		}
		waitFor(t, "the answer", func() bool { return len(f.sentTo(42)) == i+1 })
		t.Logf("update %d answered %v after its post, %d idle connections open or pushed out", i, time.Since(start), idle)
	}
	r.stop()
	t.Logf("%d idle connections closed to make room", r.bot.shedConns())
}

// dialIdle opens n connections to addr that never send a request; they are
// closed when the test ends.
func dialIdle(t *testing.T, addr string, n int) {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
}
