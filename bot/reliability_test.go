package bot

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mymmrac/telego"

	"github.com/dialogbot/dialogbot/model/dialog"
)

// groupTraffic is n messages over chats groups, each addressed to the bot,
// interleaved as Telegram delivers them. In groups every answer is a reply
// to its message, so each answer names the message it answers.
func groupTraffic(chats, n int) []*telego.Message {
	var msgs []*telego.Message
	for i := range n {
		chat := -int64(1000 + i%chats)
		msgs = append(msgs, group(chat, 5, fmt.Sprintf("@DialogTestBot m%d", i)))
	}
	return msgs
}

// checkEachAnsweredOnce checks that every message got exactly one answer and
// that each chat's answers came in the order of its messages.
func checkEachAnsweredOnce(t *testing.T, f *fakeAPI, msgs []*telego.Message) {
	t.Helper()
	answers := map[int]int{}
	lastIn := map[int64]int{}
	for _, m := range f.allSent() {
		answers[m.ReplyTo]++
		if m.ReplyTo < lastIn[m.ChatID] {
			t.Errorf("chat %d: answer to %d after the answer to %d", m.ChatID, m.ReplyTo, lastIn[m.ChatID])
		}
		lastIn[m.ChatID] = m.ReplyTo
	}
	missing, dup := 0, 0
	for _, m := range msgs {
		switch answers[m.MessageID] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	if missing != 0 || dup != 0 || len(f.allSent()) != len(msgs) {
		t.Errorf("%d messages: %d unanswered, %d answered more than once, %d sent", len(msgs), missing, dup, len(f.allSent()))
	}
}

// TestFaultMix: 100 messages through 5xx, resets before and after the
// request reached the server, HTML 200s and 429 bursts: each answered once.
func TestFaultMix(t *testing.T) {
	f := newFakeAPI(t)
	var mix []fault
	for i := range 40 {
		switch i % 5 {
		case 0:
			mix = append(mix, fault{Status: http.StatusInternalServerError}, fault{Status: http.StatusBadGateway})
		case 1:
			mix = append(mix, fault{ResetBefore: true})
		case 2:
			mix = append(mix, fault{ResetAfter: true})
		case 3:
			mix = append(mix, fault{HTML: true})
		case 4:
			if i < 10 { // two bursts: retry_after is in whole seconds
				mix = append(mix, fault{Status: http.StatusTooManyRequests, RetryAfter: 1},
					fault{Status: http.StatusTooManyRequests, RetryAfter: 1}, fault{Status: http.StatusTooManyRequests})
			}
		}
	}
	f.inject("sendMessage", mix...)
	r := startBot(t, f, &recorder{}, testOptions(t, f))
	msgs := groupTraffic(20, 100)
	f.push(msgs...)
	waitFor(t, "100 answers", func() bool { return len(f.allSent()) >= 100 })
	r.stop()
	checkEachAnsweredOnce(t, f, msgs)
	st := r.bot.Stats()
	if st.Ambiguous != 8 || st.Dropped != 0 || st.Sent != 92 {
		t.Errorf("stats %+v: want 8 ambiguous sends (the resets after), taken as sent, 92 confirmed, none dropped", st)
	}
	t.Logf("fault mix: %d faults, stats %+v", len(mix), st)
}

// A request lost inside the server after it arrived looks the same to the
// bot as one answered and then lost: taken as sent, it is the lost reply of
// the duplicate-or-loss choice (docs/reliability.md).
func TestAmbiguousSendIsNotRepeated(t *testing.T) {
	f := newFakeAPI(t)
	f.inject("sendMessage", fault{Network: true})
	r := startBot(t, f, &recorder{}, testOptions(t, f))
	f.push(private(42, "lost"), private(42, "next"))
	waitFor(t, "the next answer", func() bool { return len(f.sentTo(42)) == 1 })
	r.stop()
	if got := texts(f.sentTo(42)); !slices.Equal(got, []string{"echo: next"}) || f.callCount("sendMessage") != 2 {
		t.Errorf("sent %q in %d calls, want only the second answer in 2", got, f.callCount("sendMessage"))
	}
	if st := r.bot.Stats(); st.Ambiguous != 1 {
		t.Errorf("%d ambiguous sends counted, want 1", st.Ambiguous)
	}
}

// After the send deadline the user gets the apology, and the drop is counted.
func TestSendDeadlineApologizes(t *testing.T) {
	f := newFakeAPI(t)
	f.FailText("echo: doomed", http.StatusBadGateway)
	opts := testOptions(t, f)
	opts.SendDeadline = 100 * time.Millisecond
	opts.Texts.Apology = "sorry"
	r := startBot(t, f, &recorder{}, opts)
	f.push(private(42, "doomed"), private(42, "fine"))
	waitFor(t, "two messages", func() bool { return len(f.sentTo(42)) == 2 })
	r.stop()
	if got := texts(f.sentTo(42)); !slices.Equal(got, []string{"sorry", "echo: fine"}) {
		t.Errorf("sent %q, want the apology, then the next answer", got)
	}
	if st := r.bot.Stats(); st.Dropped != 1 || st.Retries < 1 {
		t.Errorf("stats %+v: want 1 dropped after retries", st)
	}
	// The history has the user's message but not the answer that never went out.
	s, err := OpenStore(context.Background(), opts.StorePath, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if h, _ := s.History(context.Background(), 42, 0); !slices.Equal(h, []dialog.Turn{u("doomed"), u("fine"), me("echo: fine")}) {
		t.Errorf("history %v", h)
	}
}

// Start-up calls are retried until they succeed.
func TestStartupRetries(t *testing.T) {
	f := newFakeAPI(t)
	f.inject("getMe", fault{Status: http.StatusBadGateway}, fault{Network: true}, fault{Status: http.StatusUnauthorized})
	f.inject("deleteWebhook", fault{Status: http.StatusInternalServerError})
	startBot(t, f, &recorder{}, testOptions(t, f))
	f.push(private(42, "hi"))
	waitFor(t, "the answer", func() bool { return len(f.sentTo(42)) == 1 })
	if f.callCount("getMe") != 4 || f.callCount("deleteWebhook") != 2 {
		t.Errorf("getMe called %d times, deleteWebhook %d; want 4 and 2", f.callCount("getMe"), f.callCount("deleteWebhook"))
	}
}

// An update whose redelivery comes after a restart is refused by the
// store, not by memory; a flood is answered newest-first with the rest as
// context.
func TestDedupeSurvivesRestart(t *testing.T) {
	f := newFakeAPI(t)
	opts := testOptions(t, f)
	r := startBot(t, f, &recorder{}, opts)
	f.push(private(42, "once"))
	waitFor(t, "the answer", func() bool { return len(f.sentTo(42)) == 1 })
	r.stop()
	// The same update, as Telegram sends it when its offset was not confirmed.
	f.PushRawWithID(1, `"message": {"message_id": 1, "date": 0, "chat": {"id": 42, "type": "private"}, "text": "once"}`)
	f.push(private(42, "twice"))
	r = startBot(t, f, &recorder{}, opts)
	waitFor(t, "the new answer", func() bool { return len(f.sentTo(42)) == 2 })
	r.stop()
	if got := texts(f.sentTo(42)); !slices.Equal(got, []string{"echo: once", "echo: twice"}) {
		t.Errorf("sent %q, want each answer once", got)
	}
	if st := r.bot.Stats(); st.Duplicates != 1 {
		t.Errorf("%d duplicates counted after the restart, want 1", st.Duplicates)
	}
}

func TestFloodIsAnsweredWithContext(t *testing.T) {
	f := newFakeAPI(t)
	opts := testOptions(t, f)
	opts.QueueSize = 3
	release := make(chan struct{})
	rec := &recorder{}
	replier := replierFunc(func(ctx context.Context, chatID int64, turns []dialog.Turn) (string, error) {
		<-release
		return rec.Reply(ctx, chatID, turns)
	})
	r := startBot(t, f, replier, opts)
	var flood []*telego.Message
	for i := range 10 {
		flood = append(flood, private(42, fmt.Sprintf("m%d", i)))
	}
	f.push(flood[0])
	waitFor(t, "the first message to be generating", func() bool { return f.actionsIn(42) > 0 })
	f.push(flood[1:]...)
	close(release)
	waitFor(t, "the answers", func() bool { return len(f.sentTo(42)) == 4 })
	r.stop()
	// m0 was being answered; m1..m6 had 3 or more behind them: context.
	if got := texts(f.sentTo(42)); !slices.Equal(got, []string{"echo: m0", "echo: m7", "echo: m8", "echo: m9"}) {
		t.Errorf("sent %q", got)
	}
	if last := rec.last(); len(last) < 8 || last[len(last)-2] != me("echo: m8") || last[2] != u("m1") {
		t.Errorf("the last prompt %v lacks the flood as context", last)
	}
	if st := r.bot.Stats(); st.Overflowed != 6 {
		t.Errorf("%d overflowed, want 6", st.Overflowed)
	}
}
