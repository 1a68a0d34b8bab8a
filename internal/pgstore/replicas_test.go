package pgstore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mymmrac/telego"

	"github.com/dialogbot/dialogbot/bot"
	"github.com/dialogbot/dialogbot/internal/pgtest"
	"github.com/dialogbot/dialogbot/internal/telegramtest"
	"github.com/dialogbot/dialogbot/model/dialog"
)

const hookSecret = "s3cret"

// replica is a bot in webhook mode on a store of its own over the shared database.
type replica struct {
	bot    *bot.Bot
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
}

// stop stops the replica (as SIGTERM does) and waits for it.
func (r *replica) stop() {
	r.cancel()
	<-r.done
}

func startReplica(t *testing.T, url string, api *telegramtest.Server, r bot.Replier, log io.Writer) *replica {
	t.Helper()
	store, err := Open(context.Background(), url, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	opts := bot.Options{
		Token: telegramtest.Token, APIURL: api.URL, Mode: bot.ModeWebhook,
		WebhookListen: "127.0.0.1:0", WebhookPath: "/hook", WebhookURL: "https://example.org/hook", WebhookSecret: hookSecret,
		Store: store, ClaimTTL: 2 * time.Second, ShutdownGrace: 200 * time.Millisecond,
		Limits:       bot.Limits{ChatPerSecond: 1000, GroupPerMinute: 60000, GlobalPerSecond: 10000},
		RetryBackoff: 10 * time.Millisecond, TypingInterval: time.Second,
		Texts:        bot.Texts{Greeting: "Hi!", Help: "Help.", Apology: "Sorry.", TooLong: "Too long.", ResetReply: "Forgotten."},
		HistoryTurns: 12, ReplyTimeout: 30 * time.Second, SendDeadline: time.Minute,
		MaxConcurrent: 16, QueueSize: 32, WebhookMaxConnections: 40,
	}
	b, err := bot.New(opts, r, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rep := &replica{bot: b, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rep.done)
		if err := b.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(rep.stop)
	for b.WebhookAddr() == nil {
		time.Sleep(time.Millisecond) // the listener comes up at once; this only orders the test
	}
	return rep
}

// failureLog is the replicas' log, shown when the test failed.
func failureLog(t *testing.T) *telegramtest.SyncBuffer {
	log := &telegramtest.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", log.String())
		}
	})
	return log
}

func post(r *replica, id int, m *telego.Message) error {
	return telegramtest.PostWebhook("http://"+r.bot.WebhookAddr().String()+"/hook", hookSecret, id, m)
}

func echo(_ context.Context, _ int64, turns []dialog.Turn) (string, error) {
	return "echo: " + turns[len(turns)-1].Text, nil
}

type replierFunc func(ctx context.Context, chatID int64, turns []dialog.Turn) (string, error)

func (f replierFunc) Reply(ctx context.Context, chatID int64, turns []dialog.Turn) (string, error) {
	return f(ctx, chatID, turns)
}

// TestReplicasShareTheInbox: two replicas behind a balancer that alternates
// between them; 100 messages over 20 chats; after 40 answers replica A
// hangs mid-reply and is stopped (SIGTERM: what it cut short stays
// unfinished, and it releases its chats). B takes them over: every message
// answered once, in order. (A replica killed outright, whose claims expire,
// is TestServeReplicasSurviveKill's case.)
func TestReplicasShareTheInbox(t *testing.T) {
	url := newDatabase(t, pgtest.Start(t))
	api := telegramtest.New(t)
	log := failureLog(t)
	var dying atomic.Bool
	hanging := replierFunc(func(ctx context.Context, chatID int64, turns []dialog.Turn) (string, error) {
		if dying.Load() {
			<-ctx.Done() // A hangs in the middle of a reply until it is stopped
			return "", ctx.Err()
		}
		return echo(ctx, chatID, turns)
	})
	a := startReplica(t, url, api, hanging, log)
	b := startReplica(t, url, api, replierFunc(echo), log)

	const chats, n = 20, 100
	msgs := make([]*telego.Message, n)
	for i := range msgs {
		msgs[i] = &telego.Message{MessageID: 1000 + i, Chat: telego.Chat{ID: -int64(100 + i%chats), Type: telego.ChatTypeSupergroup},
			Text: fmt.Sprintf("@%s m%d", telegramtest.BotUser.Username, i)}
	}
	aUp := true
	for i, m := range msgs {
		if i == 40 {
			api.WaitAllSent(t, 40)
			dying.Store(true)
		}
		if i == 50 {
			a.stop()
			aUp = false
		}
		target := b
		if i%2 == 0 && aUp {
			target = a
		}
		if err := post(target, i+1, m); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	api.WaitAllSent(t, n)
	b.stop()

	count := map[int]int{}
	last := map[int64]int{}
	for _, s := range api.AllSent() {
		count[s.ReplyTo]++
		if s.ReplyTo < last[s.ChatID] {
			t.Errorf("chat %d: answer to %d after the answer to %d", s.ChatID, s.ReplyTo, last[s.ChatID])
		}
		last[s.ChatID] = s.ReplyTo
	}
	for _, m := range msgs {
		if count[m.MessageID] != 1 {
			t.Errorf("message %d answered %d times", m.MessageID, count[m.MessageID])
		}
	}
	t.Logf("A: %+v\nB: %+v", a.bot.Stats(), b.bot.Stats())
}

// Control characters in a message or a reply (a model can emit any byte;
// PostgreSQL refuses a NUL in text) are dropped on the way in: the reply is
// recorded and sent at once, not retried for a minute and replaced by the
// apology, and the history keeps the message.
func TestControlCharactersNeverReachTheStore(t *testing.T) {
	url := newDatabase(t, pgtest.Start(t))
	api := telegramtest.New(t)
	log := failureLog(t)
	var seen atomic.Value
	nul := replierFunc(func(_ context.Context, _ int64, turns []dialog.Turn) (string, error) {
		seen.Store(turns[len(turns)-1].Text)
		return "a\x00b\x01c\nd", nil
	})
	r := startReplica(t, url, api, nul, log)
	m := &telego.Message{MessageID: 7, Chat: telego.Chat{ID: -5, Type: telego.ChatTypeSupergroup},
		Text: fmt.Sprintf("@%s x\x00y", telegramtest.BotUser.Username)}
	if err := post(r, 1, m); err != nil {
		t.Fatal(err)
	}
	sent := api.WaitSent(t, -5, 1)
	if sent[0].Text != "abc\nd" || sent[0].ReplyTo != 7 {
		t.Errorf("sent %+v, want the reply without its control characters", sent[0])
	}
	if got := seen.Load(); got != "x y" && got != "xy" {
		t.Errorf("the replier saw %q, want the message without its NUL", got)
	}
	if st := r.bot.Stats(); st.Retries != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v: a clean reply is neither retried nor dropped", st)
	}
}
