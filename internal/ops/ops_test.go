package ops

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/bot"
	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/engine"
)

func get(t *testing.T, srv *Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + srv.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func start(t *testing.T, h *Health, src Sources) (*Server, *Metrics) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := NewMetrics(h, src, log)
	srv, err := Listen("127.0.0.1:0", Handler(h, m.Gatherer(), log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return srv, m
}

// /healthz is ready only after both the model and the Bot API, in either order.
func TestHealthz(t *testing.T) {
	h := &Health{}
	srv, _ := start(t, h, Sources{})
	if code, body := get(t, srv, "/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "model") {
		t.Errorf("before anything: %d %q, want 503 naming the model", code, body)
	}
	h.APIAnswered()
	if code, _ := get(t, srv, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("Bot API answered, model not loaded: %d, want 503", code)
	}
	h2 := &Health{}
	h2.ModelLoaded()
	if ok, why := h2.Ready(); ok || !strings.Contains(why, "getMe") {
		t.Errorf("model loaded, Bot API silent: Ready = %v %q, want not ready, waiting for getMe", ok, why)
	}
	h.ModelLoaded()
	if code, body := get(t, srv, "/healthz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("both: %d %q, want 200 ready", code, body)
	}
	if code, _ := get(t, srv, "/other"); code != http.StatusNotFound {
		t.Errorf("/other: %d, want 404", code)
	}
}

type fixedReplier struct{ err error }

func (f fixedReplier) Reply(context.Context, int64, []dialog.Turn) (string, error) {
	return "hi", f.err
}

// /metrics reads the sources at each scrape and names every metric the
// operations docs promise.
func TestMetrics(t *testing.T) {
	h := &Health{}
	stats := bot.Stats{Received: 5, Duplicates: 1, Sent: 4, Retries: 2, Dropped: 3, Overflowed: 6, Crashed: 7, Ambiguous: 8}
	srv, m := start(t, h, Sources{
		Bot: func() bot.Stats { return stats },
		Inbox: func(context.Context) (bot.InboxDepth, error) {
			return bot.InboxDepth{Waiting: 2, Answered: 1, Finished: 9}, nil
		},
		Engine: func() engine.EngineStats { return engine.EngineStats{Tokens: 100, PromptTokens: 40, ReusedTokens: 30} },
	})
	r := m.Timed(fixedReplier{})
	if _, err := r.Reply(context.Background(), 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Timed(fixedReplier{err: errors.New("busy")}).Reply(context.Background(), 1, nil); err == nil {
		t.Fatal("the wrapped error was lost")
	}
	_, body := get(t, srv, "/metrics")
	for _, want := range []string{
		"dialogbot_updates_received_total 5", "dialogbot_updates_duplicate_total 1", "dialogbot_replies_sent_total 4",
		"dialogbot_send_retries_total 2", `dialogbot_drops_total{cause="send_failed"} 3`,
		`dialogbot_drops_total{cause="queue_overflow"} 6`, `dialogbot_drops_total{cause="crash_in_flight"} 7`,
		"dialogbot_replies_ambiguous_total 8",
		`dialogbot_inbox_updates{state="waiting"} 2`, `dialogbot_inbox_updates{state="answered"} 1`,
		`dialogbot_inbox_updates{state="finished"} 9`,
		"dialogbot_generated_tokens_total 100", "dialogbot_prompt_tokens_total 40", "dialogbot_prompt_reused_tokens_total 30",
		"dialogbot_generation_seconds_count 1", "dialogbot_generation_failures_total 1", "dialogbot_ready 0",
		"# TYPE dialogbot_generation_seconds histogram", "process_start_time_seconds", "go_goroutines",
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want+" ") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	stats.Sent = 10 // read again at the next scrape
	if _, body := get(t, srv, "/metrics"); !strings.Contains(body, "dialogbot_replies_sent_total 10\n") {
		t.Errorf("the second scrape did not read the counters again")
	}
}

// A store that cannot be counted costs the inbox gauge, not the scrape.
func TestMetricsInboxError(t *testing.T) {
	srv, _ := start(t, &Health{}, Sources{
		Bot:   func() bot.Stats { return bot.Stats{Sent: 3} },
		Inbox: func(context.Context) (bot.InboxDepth, error) { return bot.InboxDepth{}, errors.New("database down") },
	})
	code, body := get(t, srv, "/metrics")
	if code != http.StatusOK || !strings.Contains(body, "dialogbot_replies_sent_total 3\n") {
		t.Errorf("scrape with a failing store: %d, %q", code, body)
	}
	if strings.Contains(body, "dialogbot_inbox_updates{") {
		t.Errorf("inbox gauges served though the store failed")
	}
}

func TestListenTakenPort(t *testing.T) {
	srv, _ := start(t, &Health{}, Sources{})
	if _, err := Listen(srv.Addr().String(), http.NotFoundHandler()); err == nil || !strings.Contains(err.Error(), "ops.listen") {
		t.Errorf("Listen on a taken port: %v, want an ops.listen error", err)
	}
}

// Before serve opens its store, the inbox gauge is left out quietly.
func TestMetricsInboxNotYet(t *testing.T) {
	srv, _ := start(t, &Health{}, Sources{
		Inbox: func(context.Context) (bot.InboxDepth, error) { return bot.InboxDepth{}, ErrNotYet },
	})
	code, body := get(t, srv, "/metrics")
	if code != http.StatusOK || strings.Contains(body, "dialogbot_inbox_updates{") {
		t.Errorf("scrape before the store is open: %d, inbox gauge served: %v", code, strings.Contains(body, "dialogbot_inbox_updates{"))
	}
}
