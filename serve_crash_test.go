package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mymmrac/telego"

	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/internal/telegramtest"
	"github.com/dialogbot/dialogbot/internal/testmodel"
)

// The crash tests run `dialogbot serve` as a child process (this test binary,
// see TestMain) on tiny-gpt2 against the fake Bot API of the test, kill it
// while it replies, start it again on the same SQLite file and check that
// every message was answered exactly once, in order per chat.

const helperEnv = "DIALOGBOT_SERVE_HELPER_CONFIG"

// TestMain runs `dialogbot serve` instead of the tests when the crash tests
// start this binary as their child process.
func TestMain(m *testing.M) {
	if cfg := os.Getenv(helperEnv); cfg != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := runMain(ctx, []string{"serve", "--config", cfg, "-v"}, stdio{in: strings.NewReader(""), out: os.Stdout, err: os.Stderr})
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// child is a serve process.
type child struct {
	cmd  *exec.Cmd
	done chan error
}

func startChild(t *testing.T, cfg string, log *telegramtest.SyncBuffer) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+cfg)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// kill ends the child with SIGKILL: no shutdown code runs.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

// stall stops the child (SIGSTOP) for d, then lets it go on.
func (c *child) stall(t *testing.T, d time.Duration) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d) // the length of the stall is the point of the test
	if err := c.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// term sends SIGTERM and expects a clean exit; the limit only turns a hang
// into a failure.
func (c *child) term(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not exit within 60s of SIGTERM")
	}
}

// processConfig is the config of a serve child of the process tests: the
// fake Bot API, the test's apology and rate limits high enough not to slow
// the test, in webhook mode behind the test's balancer when webhook (the
// address to listen on) is set, plus the test's own sections.
func processConfig(t *testing.T, apiURL, webhook, sections string) string {
	mode := ""
	if webhook != "" {
		mode = fmt.Sprintf(`mode = "webhook"
webhook_listen = %q
webhook_path = "/hook"
webhook_url = "https://example.org/hook"
webhook_secret = %q
`, webhook, replicaSecret)
	}
	return writeConfig(t, fmt.Sprintf(`
[telegram]
api_url = %q
apology = %q
%s
[bot]
chat_per_second = 1000.0
group_per_minute = 60000.0
global_per_second = 10000.0
%s`, apiURL, serveApology, mode, sections))
}

// tinyModelSections: tiny-gpt2 on the test device, short replies, and
// /metrics on a free port (tests run side by side).
func tinyModelSections(model string) string {
	return fmt.Sprintf(`
[model]
path = %q
device = %q

[generation]
max_new_tokens = 12
fallback_reply = %q

[ops]
listen = "127.0.0.1:0"
`, model, testmodel.Device(), serveFallback)
}

// crashConfig is serve's config for the crash tests: polling, the SQLite
// store at db, the default shutdown grace.
func crashConfig(t *testing.T, apiURL, model, db string) string {
	return processConfig(t, apiURL, "", tinyModelSections(model)+fmt.Sprintf(`
[storage]
path = %q
`, db))
}

// crashTraffic is n messages over chats groups, each mentioning the bot, so
// that each answer is a reply naming the message it answers.
func crashTraffic(chats, n int) []*telego.Message {
	msgs := make([]*telego.Message, n)
	for i := range msgs {
		serveMsgID++
		chat := -int64(2000 + i%chats)
		msgs[i] = &telego.Message{MessageID: serveMsgID, From: &telego.User{ID: 5, FirstName: "U"},
			Chat: telego.Chat{ID: chat, Type: telego.ChatTypeSupergroup}, Text: fmt.Sprintf("@%s m%d", telegramtest.BotUser.Username, i)}
	}
	return msgs
}

// finish runs serve once more with a marker message in every chat; once each
// marker is answered, every earlier message of its chat was handled (a chat
// is handled in order). It returns the answers to the messages.
func finish(t *testing.T, api *telegramtest.Server, cfg string, log *telegramtest.SyncBuffer, chats int) {
	t.Helper()
	c := startChild(t, cfg, log)
	markers := crashTraffic(chats, chats)
	api.Push(markers...)
	for _, m := range markers {
		waitAnswer(t, api, m)
	}
	c.term(t)
}

func waitAnswer(t *testing.T, api *telegramtest.Server, m *telego.Message) {
	t.Helper()
	for i := 1; ; i++ {
		for _, s := range api.WaitSent(t, m.Chat.ID, i) {
			if s.ReplyTo == m.MessageID {
				return
			}
		}
	}
}

// crashReport counts how the messages were answered.
type crashReport struct {
	answered, missing, duplicated, outOfOrder, apologies int
	// lostInFlight: missing messages whose reply serve found in flight
	// after a kill and took as sent. The one window where a reply may be
	// lost (docs/reliability.md): between recording the send and its last
	// byte reaching the socket. Zero without a kill.
	lostInFlight int
	// inFlight: replies serve logged as in flight at a kill, answered or not.
	inFlight int
}

// inFlightAtKill is the message ids whose reply serve logged as in flight
// when the process before it was killed.
var inFlightAtKill = regexp.MustCompile(`taken as sent, it may be lost" chat_id=-?\d+ update_id=\d+ reply_to=(\d+)`)

func report(api *telegramtest.Server, msgs []*telego.Message, log *telegramtest.SyncBuffer) crashReport {
	var r crashReport
	count := map[int]int{}
	last := map[int64]int{}
	for _, s := range api.AllSent() {
		count[s.ReplyTo]++
		if s.ReplyTo < last[s.ChatID] {
			r.outOfOrder++
		}
		last[s.ChatID] = s.ReplyTo
		if s.Text == serveApology {
			r.apologies++
		}
	}
	inFlight := map[int]bool{}
	for _, m := range inFlightAtKill.FindAllStringSubmatch(log.String(), -1) {
		id, _ := strconv.Atoi(m[1])
		inFlight[id] = true
	}
	r.inFlight = len(inFlight)
	for _, m := range msgs {
		switch n := count[m.MessageID]; {
		case n == 0 && inFlight[m.MessageID]:
			r.lostInFlight++
		case n == 0:
			r.missing++
		case n > 1:
			r.duplicated++
		}
		if count[m.MessageID] > 0 {
			r.answered++
		}
	}
	return r
}

// check: every message answered once, in order, without an apology, but
// for replies lost in the documented window at a kill; those must be rare
// (a handful of sends are in flight at any moment).
func (r crashReport) check(t *testing.T, n int) {
	t.Helper()
	if r.answered+r.lostInFlight != n || r.missing != 0 || r.duplicated != 0 || r.outOfOrder != 0 || r.apologies != 0 ||
		r.lostInFlight > n/20 {
		t.Errorf("%d messages: %d answered, %d missing, %d lost in flight at a kill, %d answered twice, %d out of order, %d apologies",
			n, r.answered, r.missing, r.lostInFlight, r.duplicated, r.outOfOrder, r.apologies)
	}
}

// crashSetup is what the crash tests share: tiny-gpt2 exported, the fake
// Bot API holding 100 messages over 20 chats, serve's log and its config on
// a fresh SQLite file.
func crashSetup(t *testing.T) (*telegramtest.Server, *telegramtest.SyncBuffer, string, []*telego.Message) {
	t.Helper()
	testmodel.RequireBridge(t)
	model := testmodel.Export(t, "tiny-gpt2")
	t.Setenv(config.TokenEnv, telegramtest.Token)
	api := telegramtest.New(t)
	cfg := crashConfig(t, api.URL, model, filepath.Join(t.TempDir(), "bot.db"))
	msgs := crashTraffic(20, 100)
	api.Push(msgs...)
	return api, serveLog(t), cfg, msgs
}

// TestServeSurvivesKill: 100 messages over 20 chats; serve is killed with
// SIGKILL three times while it replies (each time right after the fake
// Bot API took a reply, before serve could record it), then started again.
func TestServeSurvivesKill(t *testing.T) {
	api, log, cfg, msgs := crashSetup(t)
	for _, at := range []int{15, 45, 75} {
		c := startChild(t, cfg, log)
		api.WaitAllSent(t, at)
		c.kill(t)
	}
	finish(t, api, cfg, log, 20)
	r := report(api, msgs, log)
	r.check(t, len(msgs))
	t.Logf("after 3 kills: %+v; in flight at a kill, taken as sent: %d", r, strings.Count(log.String(), "taken as sent, it may be lost"))
}

// TestServeSurvivesTerm: SIGTERM with the default grace (3 s) while
// replying, with a Bot API that takes a second per message, so that the
// grace ends with replies queued and in flight; then a restart: the rest is
// answered, nothing twice.
func TestServeSurvivesTerm(t *testing.T) {
	api, log, cfg, msgs := crashSetup(t)
	api.SetDelay("sendMessage", time.Second)
	c := startChild(t, cfg, log)
	api.WaitAllSent(t, 30)
	c.term(t)
	before := len(api.AllSent())
	api.SetDelay("sendMessage", 0)
	finish(t, api, cfg, log, 20)
	r := report(api, msgs, log)
	r.check(t, len(msgs))
	t.Logf("SIGTERM after %d answers (%d sent by exit): %+v", 30, before, r)
}

// TestServeKillWindow measures how often a kill at a random moment loses a
// reply (the window between recording a send and the request leaving) or
// repeats one: DIALOGBOT_CRASH_ROUNDS rounds of 100 messages over 20 chats,
// one SIGKILL each at a random point. Skipped unless that is set.
func TestServeKillWindow(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("DIALOGBOT_CRASH_ROUNDS"))
	if rounds <= 0 {
		t.Skip("set DIALOGBOT_CRASH_ROUNDS=N to measure N kills at random moments")
	}
	testmodel.RequireBridge(t)
	model := testmodel.Export(t, "tiny-gpt2")
	t.Setenv(config.TokenEnv, telegramtest.Token)
	rnd := rand.New(rand.NewPCG(1, 2))
	var total crashReport
	inFlight := 0
	for round := range rounds {
		api := telegramtest.New(t)
		log := &telegramtest.SyncBuffer{}
		cfg := crashConfig(t, api.URL, model, filepath.Join(t.TempDir(), "bot.db"))
		msgs := crashTraffic(20, 100)
		api.Push(msgs...)
		c := startChild(t, cfg, log)
		api.WaitAllSent(t, 5+rnd.IntN(85))
		time.Sleep(time.Duration(rnd.IntN(3000)) * time.Microsecond) // a moment anywhere in a reply's life
		c.kill(t)
		finish(t, api, cfg, log, 20)
		r := report(api, msgs, log)
		n := strings.Count(log.String(), "taken as sent, it may be lost")
		t.Logf("round %d: %+v, in flight at the kill: %d", round, r, n)
		total.answered += r.answered
		total.missing += r.missing + r.lostInFlight
		total.duplicated += r.duplicated
		total.outOfOrder += r.outOfOrder
		inFlight += n
		api.Close()
	}
	t.Logf("%d kills: %d of %d answered, %d lost, %d answered twice, %d out of order; %d sends in flight at a kill (taken as sent)",
		rounds, total.answered, rounds*100, total.missing, total.duplicated, total.outOfOrder, inFlight)
}
