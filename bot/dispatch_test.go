package bot

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mymmrac/telego"
	ta "github.com/mymmrac/telego/telegoapi"
)

func TestDispatcherKeepsOrderAndRetiresIdleWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	var mu sync.Mutex
	seen := map[int64][]int{}
	handle := func(_ context.Context, u telego.Update) {
		mu.Lock()
		defer mu.Unlock()
		seen[u.Message.Chat.ID] = append(seen[u.Message.Chat.ID], u.UpdateID)
	}
	o := Options{MaxConcurrent: 2, QueueSize: 100, IdleTimeout: time.Millisecond}
	d := newDispatcher(handle, slog.New(slog.NewTextHandler(io.Discard, nil)), o)
	ctx := context.Background()
	for i := range 300 {
		d.dispatch(ctx, telego.Update{UpdateID: i, Message: private(int64(i%3), "x")})
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

func TestDispatcherDropsBeyondQueue(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	handled := 0
	handle := func(context.Context, telego.Update) {
		<-release
		mu.Lock()
		handled++
		mu.Unlock()
	}
	o := Options{MaxConcurrent: 1, QueueSize: 2, IdleTimeout: time.Minute}
	d := newDispatcher(handle, slog.New(slog.NewTextHandler(io.Discard, nil)), o)
	for i := range 10 {
		d.dispatch(context.Background(), telego.Update{UpdateID: i, Message: private(1, "x")})
	}
	close(release)
	d.close(time.Second, func() {})
	// the first is taken by the worker (or queued), two more fit the queue
	if handled < 2 || handled > 3 {
		t.Errorf("%d updates handled, want the queue's worth (2 or 3)", handled)
	}
}

func TestDispatcherIgnoresRedeliveredUpdates(t *testing.T) {
	var mu sync.Mutex
	handled := map[int]int{}
	handle := func(_ context.Context, u telego.Update) {
		mu.Lock()
		defer mu.Unlock()
		handled[u.UpdateID]++
	}
	o := Options{MaxConcurrent: 2, QueueSize: 100, IdleTimeout: time.Minute}
	d := newDispatcher(handle, slog.New(slog.NewTextHandler(io.Discard, nil)), o)
	for _, id := range []int{7, 8, 7, 9, 8, 7} { // a webhook redelivers 7 and 8
		d.dispatch(context.Background(), telego.Update{UpdateID: id, Message: private(1, "x")})
	}
	d.close(time.Second, func() {})
	if handled[7] != 1 || handled[8] != 1 || handled[9] != 1 {
		t.Errorf("handled %v, want each update once", handled)
	}
}

func TestRecentIDsForgetsTheOldest(t *testing.T) {
	var r recentIDs
	for id := range recentUpdates + 1 {
		if !r.add(id) {
			t.Fatalf("id %d reported as seen", id)
		}
	}
	if r.add(recentUpdates) {
		t.Error("the newest id was forgotten")
	}
	if !r.add(0) {
		t.Error("the oldest id is still remembered beyond the bound")
	}
	if len(r.seen) != recentUpdates {
		t.Errorf("%d ids remembered, want %d", len(r.seen), recentUpdates)
	}
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
