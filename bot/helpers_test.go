package bot

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dialogbot/dialogbot/model/dialog"

	"github.com/mymmrac/telego"

	"github.com/dialogbot/dialogbot/internal/telegramtest"
)

// testLogger logs at debug level (telego's request URLs included) and fails
// the test if the token ever appears in the log.
func testLogger(t testing.TB) (*slog.Logger, *telegramtest.SyncBuffer) {
	buf := &telegramtest.SyncBuffer{}
	t.Cleanup(func() {
		if strings.Contains(buf.String(), testToken) {
			t.Errorf("the token appears in the log")
		}
		if t.Failed() && testing.Verbose() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// testOptions talk to the fake server with limits high enough to not slow tests.
func testOptions(t testing.TB, f *fakeAPI) Options {
	return Options{
		Token: testToken, APIURL: f.srv.URL,
		StorePath: filepath.Join(t.TempDir(), "bot.db"),
		AdminIDs:  []int64{7},
		Texts: Texts{Greeting: "Hi!", Help: "Write to me.", Apology: "Sorry.", TooLong: "Too long.",
			ResetReply: "Forgotten.", NonTextReply: "I only read text."},
		Limits:                Limits{ChatPerSecond: 1000, GroupPerMinute: 60000, GlobalPerSecond: 10000},
		HistoryTurns:          12,
		ReplyTimeout:          30 * time.Second,
		SendDeadline:          time.Minute,
		MaxConcurrent:         16,
		QueueSize:             32,
		WebhookMaxConnections: 40,
		ClaimTTL:              15 * time.Second,
		PollTimeout:           time.Second,
		ShutdownGrace:         2 * time.Second,
		TypingInterval:        20 * time.Millisecond,
		RetryBackoff:          10 * time.Millisecond,
		Rand:                  rand.New(rand.NewPCG(1, 2)),
	}
}

// running is a bot started by startBot.
type running struct {
	bot  *Bot
	log  *telegramtest.SyncBuffer
	stop func()
}

// startBot runs a bot until the returned stop is called (or the test ends)
// and waits until it polls (or its webhook is set).
func startBot(t testing.TB, f *fakeAPI, r Replier, opts Options) *running {
	t.Helper()
	log, buf := testLogger(t)
	b, err := New(opts, r, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(time.Minute): // a hang guard, not a speed requirement
				t.Fatalf("bot did not stop")
			}
		})
	}
	t.Cleanup(stop)
	waitFor(t, "bot to start", func() bool {
		return f.callCount("getUpdates") > 0 || f.webhookParams() != nil
	})
	return &running{bot: b, log: buf, stop: stop}
}

// waitFor polls cond until it holds; the deadline only guards against hangs
// (generous: a loaded CI machine under -race is slow, never wrong).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// checkNoLeaks waits until no more goroutines run than before.
func checkNoLeaks(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var msgSeq struct {
	sync.Mutex
	n int
}

func nextMsgID() int {
	msgSeq.Lock()
	defer msgSeq.Unlock()
	msgSeq.n++
	return msgSeq.n
}

func userOf(id int64) *telego.User {
	return &telego.User{ID: id, FirstName: fmt.Sprintf("User%d", id)}
}

// private is a text message in the private chat with user id.
func private(id int64, text string) *telego.Message {
	return &telego.Message{MessageID: nextMsgID(), From: userOf(id), Chat: telego.Chat{ID: id, Type: telego.ChatTypePrivate}, Text: text}
}

// group is a text message from user in a supergroup.
func group(chatID, user int64, text string) *telego.Message {
	return &telego.Message{MessageID: nextMsgID(), From: userOf(user), Chat: telego.Chat{ID: chatID, Type: telego.ChatTypeSupergroup}, Text: text}
}

// marker is a message from user 1 that the bot answers with "echo: marker";
// sent after others in the same chat, its answer shows that they were handled.
func marker(chat int64) *telego.Message {
	if chat < 0 {
		return group(chat, 1, "@DialogTestBot marker")
	}
	m := private(chat, "marker")
	m.From = userOf(1)
	return m
}

// answersBefore pushes msgs and a marker into chat and returns what the bot
// sent there before answering the marker.
func answersBefore(t testing.TB, f *fakeAPI, chat int64, msgs ...*telego.Message) []string {
	t.Helper()
	start := len(f.sentTo(chat))
	f.push(append(msgs, marker(chat))...)
	waitFor(t, "the marker's answer", func() bool { return slices.Contains(texts(f.sentTo(chat)[start:]), "echo: marker") })
	got := texts(f.sentTo(chat)[start:])
	return got[:len(got)-1]
}

// replierFunc makes a Replier of a function.
type replierFunc func(ctx context.Context, chatID int64, turns []dialog.Turn) (string, error)

func (f replierFunc) Reply(ctx context.Context, chatID int64, turns []dialog.Turn) (string, error) {
	return f(ctx, chatID, turns)
}

// recorder is an echo Replier that keeps the turns of every call.
type recorder struct {
	mu    sync.Mutex
	calls [][]dialog.Turn
	chats []int64
}

func (r *recorder) Reply(_ context.Context, chatID int64, turns []dialog.Turn) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, append([]dialog.Turn(nil), turns...))
	r.chats = append(r.chats, chatID)
	return "echo: " + turns[len(turns)-1].Text, nil
}

func (r *recorder) last() []dialog.Turn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return nil
	}
	return r.calls[len(r.calls)-1]
}

// firstIn returns the turns of the first call for chatID.
func (r *recorder) firstIn(chatID int64) []dialog.Turn {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, c := range r.chats {
		if c == chatID {
			return r.calls[i]
		}
	}
	return nil
}

func texts(msgs []sent) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Text
	}
	return out
}

func u(text string) dialog.Turn  { return dialog.Turn{Speaker: dialog.User, Text: text} }
func me(text string) dialog.Turn { return dialog.Turn{Speaker: dialog.Bot, Text: text} }
