package bot

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dialogbot/dialogbot/model/dialog"

	"github.com/mymmrac/telego"
)

// jitterReplier echoes after a short random pause, so that chats overtake
// each other and any ordering bug shows.
func jitterReplier(seed uint64) Replier {
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(seed, seed))
	return replierFunc(func(ctx context.Context, _ int64, turns []dialog.Turn) (string, error) {
		mu.Lock()
		d := time.Duration(rnd.IntN(2000)) * time.Microsecond
		mu.Unlock()
		if err := sleepCtx(ctx, d); err != nil {
			return "", err
		}
		return "echo: " + turns[len(turns)-1].Text, nil
	})
}

func TestLoadManyChatsInOrder(t *testing.T) {
	const chats, perChat = 200, 5
	f := newFakeAPI(t)
	before := runtime.NumGoroutine()
	opts := testOptions(t, f)
	opts.MaxConcurrent = 8
	opts.IdleTimeout = 50 * time.Millisecond // workers come and go during the run
	r := startBot(t, f, jitterReplier(1), opts)

	// Messages of all chats interleaved, as Telegram would deliver them.
	var msgs []*telego.Message
	for i := range perChat {
		for c := range chats {
			msgs = append(msgs, private(int64(c+1), fmt.Sprintf("m%d", i)))
		}
	}
	for len(msgs) > 0 { // in batches, like getUpdates pages
		n := min(100, len(msgs))
		f.push(msgs[:n]...)
		msgs = msgs[n:]
	}
	waitFor(t, "every answer", func() bool { return len(f.allSent()) >= chats*perChat })
	r.stop()
	checkNoLeaks(t, before)

	if n := len(f.allSent()); n != chats*perChat {
		t.Errorf("%d messages sent, want %d", n, chats*perChat)
	}
	want := make([]string, perChat)
	for i := range want {
		want[i] = fmt.Sprintf("echo: m%d", i)
	}
	for c := range chats {
		if got := texts(f.sentTo(int64(c + 1))); !slices.Equal(got, want) {
			t.Errorf("chat %d got %q, want %q", c+1, got, want)
		}
	}
}

// BenchmarkMessageOverhead measures what the bot adds per message: HTTP to a
// local fake Bot API, queueing, SQLite history and sending, with a Replier
// that answers at once.
func BenchmarkMessageOverhead(b *testing.B) {
	f := newFakeAPI(b)
	opts := testOptions(b, f)
	opts.Limits = Limits{ChatPerSecond: 1e9, GroupPerMinute: 1e9, GlobalPerSecond: 1e9}
	opts.QueueSize = b.N // everything is pushed at once: nothing may be dropped
	startBot(b, f, &recorder{}, opts)
	b.ResetTimer()
	for i := range b.N {
		f.push(private(int64(i%64+1), "hello"))
	}
	waitFor(b, "every answer", func() bool { return len(f.allSent()) >= b.N })
}
