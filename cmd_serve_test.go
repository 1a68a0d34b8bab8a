package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dialogbot/dialogbot/model/dialog"

	"github.com/mymmrac/telego"

	"github.com/dialogbot/dialogbot/bot"
	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/internal/telegramtest"
	"github.com/dialogbot/dialogbot/internal/testmodel"
)

// serveSeed fixes sampling: reply i of a process uses seed serveSeed+i, in
// serve as in chat, so serve's replies can be checked against chat's.
const serveSeed = 7

// Distinct texts, so that a canned answer is never taken for a generated one.
const (
	serveGreeting = "GREETING"
	serveApology  = "APOLOGY"
	serveFallback = "FALLBACK"
	serveReset    = "RESET"
	serveAdmin    = 7
)

// TestServeEndToEnd runs `dialogbot serve` in-process on tiny-gpt2 against a
// fake Bot API, stops it, and starts it again on the same SQLite file.
func TestServeEndToEnd(t *testing.T) {
	testmodel.RequireBridge(t)
	dir := testmodel.Export(t, "tiny-gpt2")
	t.Setenv(config.TokenEnv, telegramtest.Token)
	api := telegramtest.New(t)
	db := filepath.Join(t.TempDir(), "bot.db")
	log := serveLog(t)
	config := serveConfig(t, api.URL, dir, db, serveSeed)
	// What chat answers with the same config: the first reply to "привет",
	// then (seed+1) the reply to "как дела?" after that exchange.
	want := chatReplies(t, config, "привет", "как дела?")

	first := startServe(t, config, log)
	checkStart(t, api)
	api.Push(privateMsg(42, "привет"))
	r1 := api.WaitSent(t, 42, 2)[1] // after the greeting
	if r1.Text != want[0] || r1.ReplyTo != 0 {
		t.Errorf("private reply %+v, want %q (chat's reply with the same seed), not as a reply", r1, want[0])
	}
	checkGroupMention(t, api)
	reset := checkReset(t, api)
	first.stop(t)

	// The restarted bot's first reply uses seed+1: it equals chat's second
	// reply only if the prompt holds the first run's exchange.
	second := startServe(t, serveConfig(t, api.URL, dir, db, serveSeed+1), log)
	api.Push(privateMsg(42, "как дела?"))
	r2 := api.WaitSent(t, 42, 3)[2]
	if r2.Text != want[1] {
		t.Errorf("reply after the restart %q, want %q (chat's, with the history)", r2.Text, want[1])
	}
	second.stop(t)

	if !regexp.MustCompile(`msg="engine stats" generated_tokens=[1-9]\d* prompt_tokens=[1-9]\d* reused_prompt_tokens=\d+`).MatchString(log.String()) {
		t.Errorf("no engine stats in serve's log at shutdown")
	}
	checkHistory(t, db, 42, user("привет"), botTurn(r1.Text), user("как дела?"), botTurn(r2.Text))
	checkHistory(t, db, 44, user("два"), botTurn(reset))
	if n := len(api.SentTo(42)); n != 3 {
		t.Errorf("%d messages to chat 42, want 3: an update was answered twice", n)
	}
}

// checkStart: /start greets the user and tells the admin who it was.
func checkStart(t *testing.T, api *telegramtest.Server) {
	t.Helper()
	m := privateMsg(42, "/start")
	m.From = &telego.User{ID: 42, FirstName: "Ivan", LastName: "Petrov", Username: "ivan"}
	api.Push(m)
	if got := api.WaitSent(t, 42, 1)[0].Text; got != serveGreeting {
		t.Errorf("/start answered %q, want the greeting", got)
	}
	note := api.WaitSent(t, serveAdmin, 1)[0].Text
	for _, s := range []string{"Ivan Petrov", "@ivan", "42"} {
		if !strings.Contains(note, s) {
			t.Errorf("admin note %q lacks %q", note, s)
		}
	}
}

// checkGroupMention: a group message naming the bot is answered by the
// model, as a reply to that message.
func checkGroupMention(t *testing.T, api *telegramtest.Server) {
	t.Helper()
	m := &telego.Message{MessageID: 500, From: &telego.User{ID: 43, FirstName: "G"},
		Chat: telego.Chat{ID: -100, Type: telego.ChatTypeSupergroup}, Text: "@" + telegramtest.BotUser.Username + " как дела?"}
	api.Push(m)
	got := api.WaitSent(t, -100, 1)[0]
	if !generated(got.Text) || got.ReplyTo != m.MessageID {
		t.Errorf("group reply %+v, want a generated reply to message %d", got, m.MessageID)
	}
}

// checkReset: /reset is acknowledged, and returns the reply that follows it.
func checkReset(t *testing.T, api *telegramtest.Server) string {
	t.Helper()
	api.Push(privateMsg(44, "раз"), privateMsg(44, "/reset"), privateMsg(44, "два"))
	got := api.WaitSent(t, 44, 3)
	if !generated(got[0].Text) || got[1].Text != serveReset || !generated(got[2].Text) {
		t.Errorf("chat 44 got %+v, want a reply, %q, a reply", got, serveReset)
	}
	return got[2].Text
}

// checkHistory reads a chat's stored history once serve has stopped.
func checkHistory(t *testing.T, db string, chatID int64, want ...dialog.Turn) {
	t.Helper()
	store, err := bot.OpenStore(context.Background(), db, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	got, err := store.History(context.Background(), chatID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("chat %d history %+v, want %+v", chatID, got, want)
	}
}

// TestServeRefusesBeforeNetwork: a bad token or a missing model stops serve
// with a clear message before it calls the Bot API.
func TestServeRefusesBeforeNetwork(t *testing.T) {
	tests := []struct {
		name  string
		token string
		model string // "" = a directory that does not exist
		want  string
	}{
		{"bad token", "123456:short-token-that-is-secret", "", "not a bot token"},
		{"missing model", telegramtest.Token, "", "load model"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(config.TokenEnv, tc.token)
			api := telegramtest.New(t)
			cfg := serveConfig(t, api.URL, filepath.Join(t.TempDir(), "none"), filepath.Join(t.TempDir(), "bot.db"), serveSeed)
			var stderr strings.Builder
			code := runMain(context.Background(), []string{"serve", "--config", cfg, "-v"}, stdio{in: strings.NewReader(""), out: io.Discard, err: &stderr})
			if code != 1 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr.String(), tc.want)
			}
			if strings.Contains(stderr.String(), tc.token) {
				t.Errorf("stderr shows the token: %q", stderr.String())
			}
			if n := api.Requests(); n != 0 {
				t.Errorf("%d requests reached the Bot API, want none", n)
			}
		})
	}
}

// serveConfig writes a config for serve with the fake API, the model in
// dir on the test device (cpu unless DIALOGBOT_TEST_DEVICE), the store at db
// and limits high enough not to slow the test.
func serveConfig(tb testing.TB, apiURL, dir, db string, seed int) string {
	tb.Helper()
	return writeConfig(tb, fmt.Sprintf(`
[telegram]
api_url = %q
admin_ids = [%d]
greeting = %q
apology = %q
reset_reply = %q

[model]
path = %q
device = %q

[generation]
# tiny-gpt2 has 64 positions: short replies leave room for the history.
max_new_tokens = 12
seed = %d
fallback_reply = %q

[storage]
path = %q

[bot]
chat_per_second = 1000.0
group_per_minute = 60000.0
global_per_second = 10000.0
shutdown_grace = "1s"

[ops]
# A free port: tests run side by side.
listen = "127.0.0.1:0"
`, apiURL, serveAdmin, serveGreeting, serveApology, serveReset, dir, testmodel.Device(), seed, serveFallback, db))
}

// chatReplies asks `dialogbot chat` with serve's config (model, device,
// generation and seed) for its replies to msgs, one conversation.
func chatReplies(tb testing.TB, config string, msgs ...string) []string {
	tb.Helper()
	code, out, errOut := runWithInput(tb, strings.Join(msgs, "\n")+"\n", "chat", "--config", config)
	if code != 0 {
		tb.Fatalf("chat: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(msgs) {
		tb.Fatalf("chat gave %d lines for %d messages: %q", len(lines), len(msgs), out)
	}
	for _, l := range lines {
		// oneLine escapes newlines: a reply with one could not be compared.
		if l == "" || strings.Contains(l, `\n`) {
			tb.Fatalf("chat reply %q cannot be compared; pick another serveSeed", l)
		}
	}
	return lines
}

// generated tells a model's reply from the bot's canned answers.
func generated(text string) bool {
	switch text {
	case "", serveApology, serveFallback, serveGreeting, serveReset:
		return false
	}
	return true
}

// serving is a `dialogbot serve` running in a goroutine.
type serving struct {
	cancel context.CancelFunc
	done   chan int
	once   sync.Once
}

// startServe runs serve with the config until stop (or the end of the test).
func startServe(tb testing.TB, config string, log io.Writer) *serving {
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{cancel: cancel, done: make(chan int, 1)}
	go func() {
		s.done <- runMain(ctx, []string{"serve", "--config", config, "-v"}, stdio{in: strings.NewReader(""), out: io.Discard, err: log})
	}()
	tb.Cleanup(func() { s.stop(tb) })
	return s
}

// stop cancels serve, as SIGINT does, and expects a clean exit; the limit
// only turns a hang into a failure.
func (s *serving) stop(tb testing.TB) {
	tb.Helper()
	s.once.Do(func() {
		s.cancel()
		select {
		case code := <-s.done:
			if code != 0 {
				tb.Errorf("serve exited with %d, want 0", code)
			}
		case <-time.After(time.Minute):
			tb.Fatalf("serve did not exit within a minute of cancellation")
		}
	})
}

// serveLog is serve's stderr; at the end of the test it must not hold the
// token, and it is shown when the test failed.
func serveLog(t *testing.T) *telegramtest.SyncBuffer {
	log := &telegramtest.SyncBuffer{}
	t.Cleanup(func() {
		if strings.Contains(log.String(), telegramtest.Token) {
			t.Errorf("the token appears in serve's log")
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", log.String())
		}
	})
	return log
}

var serveMsgID = 1000

// privateMsg is a text message from user id in their private chat with the bot.
func privateMsg(id int64, text string) *telego.Message {
	serveMsgID++
	return &telego.Message{MessageID: serveMsgID, From: &telego.User{ID: id, FirstName: fmt.Sprintf("User%d", id)},
		Chat: telego.Chat{ID: id, Type: telego.ChatTypePrivate}, Text: text}
}

func user(text string) dialog.Turn    { return dialog.Turn{Speaker: dialog.User, Text: text} }
func botTurn(text string) dialog.Turn { return dialog.Turn{Speaker: dialog.Bot, Text: text} }

func TestServeRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name  string
		toml  string
		token string
		want  string
	}{
		{"no token", "", "", "telegram.token: not set"},
		{"malformed token", "", "123:short", "not a bot token"},
		{"unknown key", "[bot]\nspeed = 1", validToken, "unknown key"},
		{"no model", "[ops]\nlisten = \"\"", validToken, "load model"}, // model.path is empty
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(config.TokenEnv, tc.token)
			var stderr bytes.Buffer
			code := runMain(context.Background(), []string{"serve", "--config", writeConfig(t, tc.toml)},
				stdio{in: strings.NewReader(""), out: &bytes.Buffer{}, err: &stderr})
			if code != 1 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr.String(), tc.want)
			}
			if tc.token != "" && strings.Contains(stderr.String(), tc.token) {
				t.Errorf("stderr shows the token")
			}
		})
	}
}

func TestBotOptionsFromConfig(t *testing.T) {
	cfg := config.Default()
	cfg.Telegram.Token = validToken
	cfg.Telegram.AdminIDs = []int64{5}
	cfg.Bot.GroupChance = 15
	o := botOptions(cfg)
	if err := o.Validate(); err != nil {
		t.Fatalf("options from the default config do not validate: %v", err)
	}
	if o.Token != validToken || o.AdminIDs[0] != 5 || o.GroupChance != 15 || o.StorePath != cfg.Storage.Path ||
		o.Texts.Greeting != cfg.Telegram.Greeting || o.ReplyTimeout != cfg.Generation.Timeout ||
		o.SendDeadline != cfg.Bot.SendDeadline || o.WebhookMaxConnections != cfg.Telegram.WebhookMaxConnections {
		t.Errorf("options %+v do not follow the config", o)
	}
}

// TestServeModelFlag: --model overrides model.path (make demo passes it, so
// MODEL_DIR is honoured with an existing config.toml).
func TestServeModelFlag(t *testing.T) {
	t.Setenv(config.TokenEnv, validToken)
	missing := filepath.Join(t.TempDir(), "no-such-model")
	cfg := writeConfig(t, "[model]\npath = \"/elsewhere\"\n[ops]\nlisten = \"\"\n")
	var stderr bytes.Buffer
	code := runMain(context.Background(), []string{"serve", "--config", cfg, "--model", missing},
		stdio{in: strings.NewReader(""), out: &bytes.Buffer{}, err: &stderr})
	if code != 1 || !strings.Contains(stderr.String(), missing) || strings.Contains(stderr.String(), "/elsewhere") {
		t.Errorf("exit %d, stderr %q; want 1 and an error naming %s", code, stderr.String(), missing)
	}
}
