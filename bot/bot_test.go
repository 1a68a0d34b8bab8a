package bot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dialogbot/dialogbot/model/dialog"

	"github.com/mymmrac/telego"
)

func TestStartGreetsAndNotifiesAdmins(t *testing.T) {
	f := newFakeAPI(t)
	opts := testOptions(t, f)
	opts.Texts.Greeting = "Hello there!"
	opts.AdminIDs = []int64{7, 8}
	startBot(t, f, &recorder{}, opts)

	m := private(42, "/start")
	m.From = &telego.User{ID: 42, FirstName: "Ivan", LastName: "Petrov", Username: "ivan"}
	f.push(m)
	waitFor(t, "admin notifications", func() bool { return len(f.sentTo(8)) == 1 })

	if got := texts(f.sentTo(42)); !slices.Equal(got, []string{"Hello there!"}) {
		t.Errorf("user got %q, want the greeting", got)
	}
	for _, admin := range []int64{7, 8} {
		got := texts(f.sentTo(admin))
		if len(got) != 1 || !strings.Contains(got[0], "Ivan Petrov") || !strings.Contains(got[0], "@ivan") || !strings.Contains(got[0], "42") {
			t.Errorf("admin %d got %q, want a note naming Ivan Petrov, @ivan, 42", admin, got)
		}
	}
}

func TestPrivateMessageGetsReply(t *testing.T) {
	f := newFakeAPI(t)
	rec := &recorder{}
	startBot(t, f, rec, testOptions(t, f))
	f.push(private(42, "  hello  "))
	waitFor(t, "reply", func() bool { return len(f.sentTo(42)) == 1 })
	got := f.sentTo(42)[0]
	if got.Text != "echo: hello" || got.ReplyTo != 0 {
		t.Errorf("got %+v, want echo: hello without reply parameters", got)
	}
	if want := []dialog.Turn{u("hello")}; !slices.Equal(rec.last(), want) {
		t.Errorf("turns %v, want %v", rec.last(), want)
	}
}

func TestTypingWhileGenerating(t *testing.T) {
	f := newFakeAPI(t)
	// The reply comes only once "typing" was sent twice: it is shown, and repeated.
	// (It runs on the bot's goroutine, so it returns an error rather than
	// failing the test: the test goroutine then misses the reply.)
	slow := replierFunc(func(ctx context.Context, chatID int64, _ []dialog.Turn) (string, error) {
		for f.actionsIn(chatID) < 2 {
			select {
			case <-ctx.Done():
				return "", fmt.Errorf("typing was not sent twice: %w", ctx.Err())
			case <-time.After(2 * time.Millisecond):
			}
		}
		return "done", nil
	})
	startBot(t, f, slow, testOptions(t, f))
	f.push(private(42, "think hard"))
	waitFor(t, "reply", func() bool { return len(f.sentTo(42)) == 1 })
	if got := texts(f.sentTo(42)); !slices.Equal(got, []string{"done"}) {
		t.Errorf("sent %q, want the reply after two typing actions", got)
	}
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"help", "/help", []string{"HELP"}},
		{"help addressed to us", "/help@DialogTestBot", []string{"HELP"}},
		{"command of another bot", "/help@OtherBot", nil},
		{"unknown in private", "/weather", []string{"HELP"}},
		{"chance in private", "/chance 50", []string{chanceGroupOnly}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t)
			opts := testOptions(t, f)
			opts.Texts.Help = "HELP"
			startBot(t, f, &recorder{}, opts)
			chat := int64(100 + i)
			f.push(private(chat, tc.text), private(chat, "ping"))
			waitFor(t, "echo of ping", func() bool { return slices.Contains(texts(f.sentTo(chat)), "echo: ping") })
			if got := texts(f.sentTo(chat)); !slices.Equal(got, append(tc.want, "echo: ping")) {
				t.Errorf("got %q, want %q then the echo", got, tc.want)
			}
		})
	}
}

func TestGroupAnswersWhenAddressed(t *testing.T) {
	const chat, user = -100, 5
	botMsg := &telego.Message{MessageID: 1, From: &botUser, Chat: telego.Chat{ID: chat, Type: "supergroup"}, Text: "earlier bot words"}
	otherMsg := &telego.Message{MessageID: 2, From: userOf(6), Chat: telego.Chat{ID: chat, Type: "supergroup"}, Text: "someone else"}
	tests := []struct {
		name      string
		msg       func() *telego.Message
		wantReply string // "" = no answer
		wantTurns []dialog.Turn
	}{
		{"plain message", func() *telego.Message { return group(chat, user, "just talking") }, "", nil},
		{"mentioned", func() *telego.Message { return group(chat, user, "@DialogTestBot how are you?") }, "echo: how are you?",
			[]dialog.Turn{u("how are you?")}},
		{"mentioned in another case", func() *telego.Message { return group(chat, user, "hi @dialogtestbot") }, "echo: hi",
			[]dialog.Turn{u("hi")}},
		{"other bot's name", func() *telego.Message { return group(chat, user, "@DialogTestBotX hi") }, "", nil},
		{"reply to the bot", func() *telego.Message {
			m := group(chat, user, "and then?")
			m.ReplyToMessage = botMsg
			return m
		}, "echo: and then?", []dialog.Turn{me("earlier bot words"), u("and then?")}},
		{"reply to someone, mentioned", func() *telego.Message {
			m := group(chat, user, "@DialogTestBot agree?")
			m.ReplyToMessage = otherMsg
			return m
		}, "echo: agree?", []dialog.Turn{u("someone else"), u("agree?")}},
		{"reply to someone, not mentioned", func() *telego.Message {
			m := group(chat, user, "yes")
			m.ReplyToMessage = otherMsg
			return m
		}, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t)
			rec := &recorder{}
			startBot(t, f, rec, testOptions(t, f))
			m := tc.msg()
			got := answersBefore(t, f, chat, m)
			if tc.wantReply == "" {
				if len(got) != 0 {
					t.Fatalf("bot answered %q, want silence", got)
				}
				return
			}
			first := f.sentTo(chat)[0]
			if len(got) != 1 || first.Text != tc.wantReply || first.ReplyTo != m.MessageID {
				t.Fatalf("got %+v, want %q as a reply to message %d", f.sentTo(chat), tc.wantReply, m.MessageID)
			}
			if turns := rec.firstIn(chat); !slices.Equal(turns, tc.wantTurns) {
				t.Errorf("turns %v, want %v", turns, tc.wantTurns)
			}
		})
	}
}

func TestChanceCommand(t *testing.T) {
	const chat, admin, member = -200, 2, 3
	f := newFakeAPI(t)
	f.setStatus(chat, admin, telego.MemberStatusAdministrator)
	startBot(t, f, &recorder{}, testOptions(t, f))

	steps := []struct {
		from int64
		text string
		want string // reply in the group, "" = none
	}{
		{member, "unprompted 1", ""},
		{member, "/chance 100", chanceNotAdmin},
		{admin, "/chance 101", chanceUsage},
		{admin, "/chance 100", fmt.Sprintf(chanceSet, 100)},
		{member, "unprompted 2", "echo: unprompted 2"},
		{admin, "/chance 0", fmt.Sprintf(chanceSet, 0)},
		{member, "unprompted 3", ""},
	}
	for _, s := range steps {
		var want []string
		if s.want != "" {
			want = []string{s.want}
		}
		if got := answersBefore(t, f, chat, group(chat, s.from, s.text)); !slices.Equal(got, want) {
			t.Fatalf("after %q from %d: group got %q, want %q", s.text, s.from, got, want)
		}
	}
}

func TestResetForgetsHistory(t *testing.T) {
	f := newFakeAPI(t)
	rec := &recorder{}
	opts := testOptions(t, f)
	opts.Texts.ResetReply = "forgotten"
	startBot(t, f, rec, opts)
	f.push(private(42, "one"), private(42, "two"))
	waitFor(t, "two replies", func() bool { return len(f.sentTo(42)) == 2 })
	if want := []dialog.Turn{u("one"), me("echo: one"), u("two")}; !slices.Equal(rec.last(), want) {
		t.Fatalf("turns %v, want %v", rec.last(), want)
	}
	f.push(private(42, "/reset"), private(42, "three"))
	waitFor(t, "four replies", func() bool { return len(f.sentTo(42)) == 4 })
	if got := texts(f.sentTo(42))[2]; got != "forgotten" {
		t.Errorf("/reset answered %q", got)
	}
	if want := []dialog.Turn{u("three")}; !slices.Equal(rec.last(), want) {
		t.Errorf("turns after reset %v, want %v", rec.last(), want)
	}
}

// TestLongChatKeepsPromptStarts: past history_turns, most messages still
// extend the last prompt (its turns, the reply, the new message), which is
// what lets the engine reuse the chat's cached prompt.
func TestLongChatKeepsPromptStarts(t *testing.T) {
	f := newFakeAPI(t)
	rec := &recorder{}
	opts := testOptions(t, f)
	opts.HistoryTurns = 8
	startBot(t, f, rec, opts)
	const messages = 20
	for i := range messages {
		f.push(private(42, fmt.Sprint("m", i)))
		waitFor(t, "the reply", func() bool { return len(f.sentTo(42)) == i+1 })
	}
	extended := 0
	for i := 1; i < messages; i++ {
		prev, cur := rec.calls[i-1], rec.calls[i]
		if len(cur) > 9 {
			t.Fatalf("message %d got %d turns, over 8 of history and itself", i, len(cur))
		}
		want := append(slices.Clone(prev), me("echo: "+prev[len(prev)-1].Text), u(fmt.Sprint("m", i)))
		if slices.Equal(cur, want) {
			extended++
		}
	}
	// History overflows (9 turns -> the newest 4) every 5 turns appended, that is every 2.5
	// messages, and the message after each starts anew: 13 of 19 extend. A window sliding one
	// turn at a time would extend only the first 4.
	if extended < 13 {
		t.Errorf("%d of %d prompts extend the last one, want at least 13", extended, messages-1)
	}
}

func TestRestartKeepsHistory(t *testing.T) {
	f := newFakeAPI(t)
	opts := testOptions(t, f)
	first := startBot(t, f, &recorder{}, opts)
	f.push(private(42, "one"))
	waitFor(t, "first reply", func() bool { return len(f.sentTo(42)) == 1 })
	first.stop()

	rec := &recorder{}
	startBot(t, f, rec, opts) // same store path
	f.push(private(42, "two"))
	waitFor(t, "second reply", func() bool { return len(f.sentTo(42)) == 2 })
	if want := []dialog.Turn{u("one"), me("echo: one"), u("two")}; !slices.Equal(rec.last(), want) {
		t.Errorf("turns after restart %v, want %v", rec.last(), want)
	}
	if got := texts(f.sentTo(42)); !slices.Equal(got, []string{"echo: one", "echo: two"}) {
		t.Errorf("sent %q: an update was answered again after the restart", got)
	}
}

func TestRetryAfterIsWaitedOutAndSentOnce(t *testing.T) {
	f := newFakeAPI(t)
	f.inject("sendMessage", fault{Status: http.StatusTooManyRequests, RetryAfter: 1})
	startBot(t, f, &recorder{}, testOptions(t, f))
	start := time.Now()
	f.push(private(42, "hi"))
	waitFor(t, "reply", func() bool { return len(f.sentTo(42)) == 1 })
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %v, before retry_after (1s) was over", waited)
	}
	f.push(private(43, "marker"))
	waitFor(t, "marker", func() bool { return len(f.sentTo(43)) == 1 })
	if got := texts(f.sentTo(42)); !slices.Equal(got, []string{"echo: hi"}) {
		t.Errorf("sent %q, want the reply once", got)
	}
	if n := f.callCount("sendMessage"); n != 3 {
		t.Errorf("%d sendMessage calls, want 3 (429, retry, marker)", n)
	}
}

func TestWebhook(t *testing.T) {
	f := newFakeAPI(t)
	opts := webhookOptions(t, f)
	r := startBot(t, f, &recorder{}, opts)
	if got := f.webhookParams(); got["url"] != opts.WebhookURL || got["secret_token"] != opts.WebhookSecret {
		t.Fatalf("setWebhook got %v", got)
	}
	waitFor(t, "listener", func() bool { return r.bot.WebhookAddr() != nil })
	url := "http://" + r.bot.WebhookAddr().String()

	post := func(path, secret string, m *telego.Message) int {
		body := fmt.Sprintf(`{"update_id": 1, "message": {"message_id": %d, "date": 0, "chat": {"id": %d, "type": "private"}, "from": {"id": %d, "is_bot": false, "first_name": "A"}, "text": %q}}`,
			m.MessageID, m.Chat.ID, m.From.ID, m.Text)
		req, _ := http.NewRequest(http.MethodPost, url+path, bytes.NewBufferString(body))
		if secret != "" {
			req.Header.Set(telego.WebhookSecretTokenHeader, secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("post: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name, path, secret string
		want               int
	}{
		{"wrong secret", "/hook", "guess", http.StatusForbidden},
		{"no secret", "/hook", "", http.StatusForbidden},
		{"wrong path", "/other", opts.WebhookSecret, http.StatusNotFound},
		{"right secret", "/hook", opts.WebhookSecret, http.StatusOK},
	}
	for _, tc := range tests {
		if got := post(tc.path, tc.secret, private(42, tc.name)); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	waitFor(t, "reply", func() bool { return len(f.sentTo(42)) == 1 })
	if got := texts(f.sentTo(42)); !slices.Equal(got, []string{"echo: right secret"}) {
		t.Errorf("sent %q, want only the reply to the accepted update", got)
	}
	if f.callCount("getUpdates") != 0 || f.callCount("deleteWebhook") != 0 {
		t.Errorf("webhook mode polled or deleted its webhook")
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestPollingDeletesWebhook(t *testing.T) {
	f := newFakeAPI(t)
	startBot(t, f, &recorder{}, testOptions(t, f))
	if f.callCount("deleteWebhook") != 1 {
		t.Errorf("deleteWebhook called %d times, want 1", f.callCount("deleteWebhook"))
	}
}

func TestSurvivesErrors(t *testing.T) {
	f := newFakeAPI(t)
	f.inject("getUpdates", fault{Status: http.StatusInternalServerError}, fault{Network: true}, fault{Status: http.StatusBadGateway})
	opts := testOptions(t, f)
	opts.Texts.Apology = "sorry"
	replier := replierFunc(func(_ context.Context, _ int64, turns []dialog.Turn) (string, error) {
		switch text := turns[len(turns)-1].Text; text {
		case "fail":
			return "", errors.New("model exploded")
		case "panic":
			panic("model panicked")
		case "huge":
			return "", fmt.Errorf("building prompt: %w", dialog.ErrPromptTooLong)
		default:
			return "echo: " + text, nil
		}
	})
	opts.Texts.TooLong = "too long"
	r := startBot(t, f, replier, opts)
	f.push(private(42, "fail"), private(42, "panic"), private(42, "huge"), private(42, "still here?"))
	waitFor(t, "four answers", func() bool { return len(f.sentTo(42)) == 4 })
	if got, want := texts(f.sentTo(42)), []string{"sorry", "sorry", "too long", "echo: still here?"}; !slices.Equal(got, want) {
		t.Errorf("sent %q, want %q", got, want)
	}
	for _, cause := range []string{"model exploded", "model panicked"} {
		if !strings.Contains(r.log.String(), cause) {
			t.Errorf("the log lacks the cause %q", cause)
		}
	}

	// Sends that fail with a server error, or whose connection is reset
	// before the request was sent, are retried; the bot goes on.
	f.inject("sendMessage", fault{Status: http.StatusInternalServerError}, fault{ResetBefore: true})
	f.push(private(43, "retried"), private(43, "arrives"))
	waitFor(t, "the answers after the failures", func() bool { return len(f.sentTo(43)) == 2 })
	if got := texts(f.sentTo(43)); !slices.Equal(got, []string{"echo: retried", "echo: arrives"}) {
		t.Errorf("sent %q, want both answers once", got)
	}
}

func TestLongReplyIsSplit(t *testing.T) {
	para := strings.Repeat("слово ", 300) // 1,800 units
	long := strings.TrimSpace(strings.Repeat(para+"\n\n", 5))
	f := newFakeAPI(t)
	talker := replierFunc(func(_ context.Context, _ int64, turns []dialog.Turn) (string, error) {
		if text := turns[len(turns)-1].Text; text != "talk a lot" {
			return "echo: " + text, nil
		}
		return long, nil
	})
	startBot(t, f, talker, testOptions(t, f))
	f.push(private(42, "talk a lot"), private(42, "marker"))
	waitFor(t, "all parts", func() bool { return slices.Contains(texts(f.sentTo(42)), "echo: marker") })
	all := texts(f.sentTo(42))
	parts := all[:len(all)-1]
	// 5 paragraphs of 1,800 units: two fit in a message, so 3 messages,
	// each cut between paragraphs
	if len(parts) != 3 {
		t.Errorf("%d parts, want 3", len(parts))
	}
	for i, p := range parts {
		if utf16Len(p) > MaxMessageLen {
			t.Errorf("part %d has %d units", i, utf16Len(p))
		}
	}
	if strings.Join(strings.Fields(strings.Join(parts, " ")), " ") != strings.Join(strings.Fields(long), " ") {
		t.Errorf("the parts do not add up to the reply")
	}
}

func TestNonTextAndAllowList(t *testing.T) {
	sticker := private(42, "")
	sticker.Sticker = &telego.Sticker{FileID: "x"}
	fromBot := private(42, "beep")
	fromBot.From = &telego.User{ID: 43, IsBot: true, FirstName: "B"}
	anonymous := group(-6, 0, "@DialogTestBot hi")
	anonymous.From = &telego.User{ID: 1087968824, IsBot: true, FirstName: "Group", Username: "GroupAnonymousBot"}
	anonymous.SenderChat = &telego.Chat{ID: -6, Type: telego.ChatTypeSupergroup}
	photo := group(-7, 42, "")
	photo.Photo = []telego.PhotoSize{{FileID: "p"}}
	photo.Caption = "@DialogTestBot what is this?"
	tests := []struct {
		name string
		mod  func(*Options)
		msg  *telego.Message
		want []string
	}{
		{"sticker answered", func(*Options) {}, sticker, []string{"I only read text."}},
		{"photo mentioning the bot in a group", func(*Options) {}, photo, []string{"I only read text."}},
		{"sticker ignored", func(o *Options) { o.Texts.NonTextReply = "" }, sticker, nil},
		{"user not allowed", func(o *Options) { o.AllowedUserIDs = []int64{1} }, private(42, "hi"), nil},
		{"user allowed", func(o *Options) { o.AllowedUserIDs = []int64{1, 42} }, private(42, "hi"), []string{"echo: hi"}},
		{"chat allowed", func(o *Options) { o.AllowedChatIDs = []int64{-5}; o.AllowedUserIDs = []int64{1} },
			group(-5, 42, "@DialogTestBot hi"), []string{"echo: hi"}},
		{"other bots ignored", func(*Options) {}, fromBot, nil},
		{"anonymous admin answered", func(*Options) {}, anonymous, []string{"echo: hi"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t)
			opts := testOptions(t, f)
			tc.mod(&opts)
			startBot(t, f, &recorder{}, opts)
			if got := answersBefore(t, f, tc.msg.Chat.ID, tc.msg); !slices.Equal(got, tc.want) {
				t.Errorf("sent %q, want %q", got, tc.want)
			}
		})
	}
}

func TestShutdownCancelsSlowReplies(t *testing.T) {
	f := newFakeAPI(t)
	before := runtime.NumGoroutine()
	started := make(chan struct{}, 10)
	slow := replierFunc(func(ctx context.Context, _ int64, _ []dialog.Turn) (string, error) {
		started <- struct{}{}
		<-ctx.Done() // a generation that would never end by itself
		return "", ctx.Err()
	})
	opts := testOptions(t, f)
	opts.ShutdownGrace = 100 * time.Millisecond
	r := startBot(t, f, slow, opts)
	f.push(private(1, "a"), private(2, "b"), private(3, "c"))
	for range 3 {
		<-started
	}
	r.stop()
	checkNoLeaks(t, before)
}

// An update telego cannot decode (here a forward origin of a kind it does not
// know, as Telegram adds them) must not fail every getUpdates after it: the
// bot skips it and answers the rest.
func TestUndecodableUpdateIsSkipped(t *testing.T) {
	f := newFakeAPI(t)
	r := startBot(t, f, &recorder{}, testOptions(t, f))
	f.PushRaw(`"message": {"message_id": 1, "date": 0, "chat": {"id": 42, "type": "private"},
		"from": {"id": 42, "is_bot": false, "first_name": "A"}, "text": "fwd",
		"forward_origin": {"type": "brand_new_kind", "date": 0}}`)
	f.push(private(42, "after"))
	waitFor(t, "the answer after the bad update", func() bool { return len(f.sentTo(42)) == 1 })
	if got := texts(f.sentTo(42)); !slices.Equal(got, []string{"echo: after"}) {
		t.Errorf("sent %q, want only the answer to the good update", got)
	}
	if !strings.Contains(r.log.String(), "brand_new_kind") {
		t.Errorf("the log does not say why the update was skipped")
	}
}
