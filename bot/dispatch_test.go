package bot

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mymmrac/telego"
	ta "github.com/mymmrac/telego/telegoapi"
)

func testJob(id int, m *telego.Message) *job {
	return &job{in: Incoming{UpdateID: id}, u: telego.Update{UpdateID: id, Message: m}}
}

func TestDispatcherKeepsOrderAndRetiresIdleWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	var mu sync.Mutex
	seen := map[int64][]int{}
	handle := func(_ context.Context, j *job) {
		mu.Lock()
		defer mu.Unlock()
		seen[j.u.Message.Chat.ID] = append(seen[j.u.Message.Chat.ID], j.u.UpdateID)
	}
	o := Options{MaxConcurrent: 2, QueueSize: 100, IdleTimeout: time.Millisecond}
	d := newDispatcher(handle, slog.New(slog.NewTextHandler(io.Discard, nil)), o)
	ctx := context.Background()
	for i := range 300 {
		d.dispatch(ctx, testJob(i, private(int64(i%3), "x")))
	}
	waitFor(t, "idle workers to retire", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.chats) == 0
	})
	checkNoLeaks(t, before)
	for chat, ids := range seen {
		for i := 1; i < len(ids); i++ {
			if ids[i] < ids[i-1] {
				t.Fatalf("chat %d handled out of order: %v", chat, ids)
			}
		}
		if len(ids) != 100 {
			t.Errorf("chat %d handled %d updates, want 100", chat, len(ids))
		}
	}
	d.close(time.Second, func() {})
}

// A chat with more waiting than the queue holds gets its oldest updates
// marked as overflow (context only), never dropped, and in order.
func TestDispatcherMarksOverflow(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var ids []int
	var overflow []bool
	handle := func(_ context.Context, j *job) {
		<-release
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, j.in.UpdateID)
		overflow = append(overflow, j.overflow)
	}
	o := Options{MaxConcurrent: 1, QueueSize: 2, IdleTimeout: time.Minute}
	d := newDispatcher(handle, slog.New(slog.NewTextHandler(io.Discard, nil)), o)
	// The worker may take update 0 before the rest arrive; from then on each
	// update is marked by what waits behind it when it is taken.
	for i := range 10 {
		d.dispatch(context.Background(), testJob(i, private(1, "x")))
	}
	close(release)
	d.close(time.Second, func() {})
	if !slices.Equal(ids, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("handled %v, want all ten in order", ids)
	}
	// Updates 1..7 had at least 2 behind them; 8 and 9 are answered.
	for i := 1; i < 10; i++ {
		if want := i <= 7; overflow[i] != want {
			t.Errorf("update %d overflow = %v, want %v (all: %v)", i, overflow[i], want, overflow)
		}
	}
}

// Updates without a chat each get a queue of their own: they neither wait
// behind a busy chat nor share one queue among themselves.
func TestDispatcherChatlessUpdatesDoNotQueueWithChats(t *testing.T) {
	block := make(chan struct{})
	done := make(chan int, 10)
	handle := func(_ context.Context, j *job) {
		if j.u.Message != nil {
			<-block // the chat is busy
		}
		done <- j.in.UpdateID
	}
	o := Options{MaxConcurrent: 4, QueueSize: 1, IdleTimeout: time.Minute}
	d := newDispatcher(handle, slog.New(slog.NewTextHandler(io.Discard, nil)), o)
	d.dispatch(context.Background(), testJob(1, private(0, "x")), testJob(2, private(0, "y")))
	for id := 3; id < 6; id++ {
		d.dispatch(context.Background(), &job{in: Incoming{UpdateID: id}, u: telego.Update{UpdateID: id}})
	}
	got := map[int]bool{}
	for range 3 {
		got[<-done] = true
	}
	if !got[3] || !got[4] || !got[5] {
		t.Errorf("chatless updates handled: %v, want 3, 4 and 5 while chat 0 is busy", got)
	}
	close(block)
	d.close(time.Second, func() {})
}

func TestPollHint(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"conflict", &ta.Error{ErrorCode: 409, Description: "Conflict: terminated by other getUpdates request"}, "another process"},
		{"bad token", &ta.Error{ErrorCode: 401, Description: "Unauthorized"}, "token"},
		{"server error", &ta.Error{ErrorCode: 502}, ""},
		{"network", errors.New("connection refused"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := pollHint(c.err)
			if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
				t.Errorf("hint %q, want one containing %q", got, c.want)
			}
		})
	}
}
