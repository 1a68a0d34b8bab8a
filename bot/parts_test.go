package bot

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mymmrac/telego"
	ta "github.com/mymmrac/telego/telegoapi"
)

func TestParseCommand(t *testing.T) {
	b := &Bot{me: botUser}
	tests := []struct {
		text, name, args string
	}{
		{"/start", "start", ""},
		{"/Chance 40", "chance", "40"},
		{"/chance@DialogTestBot  25 ", "chance", "25"},
		{"/chance@dialogtestbot 25", "chance", "25"},
		{"/start@SomeOtherBot", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			name, args := b.parseCommand(tc.text)
			if name != tc.name || args != tc.args {
				t.Errorf("parseCommand(%q) = %q, %q; want %q, %q", tc.text, name, args, tc.name, tc.args)
			}
		})
	}
}

func TestStripMention(t *testing.T) {
	re := mentionPattern("DialogTestBot")
	tests := []struct {
		name, text, want string
		ok               bool
	}{
		{"at the start", "@DialogTestBot hello", "hello", true},
		{"in the middle", "so @dialogtestbot, what now", "so , what now", true},
		{"alone", "@DialogTestBot", "@DialogTestBot", true},
		{"longer name", "@DialogTestBot2 hi", "@DialogTestBot2 hi", false},
		{"none", "hello", "hello", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := stripMention(tc.text, re)
			if got != tc.want || ok != tc.ok {
				t.Errorf("stripMention(%q) = %q, %v; want %q, %v", tc.text, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestDescribeUser(t *testing.T) {
	tests := []struct {
		name string
		user telego.User
		want string
	}{
		{"full", telego.User{ID: 42, FirstName: "Ivan", LastName: "Petrov", Username: "ivan"}, "Ivan Petrov (@ivan), id 42"},
		{"no username", telego.User{ID: 7, FirstName: "Anna"}, "Anna, id 7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeUser(tc.user); got != tc.want {
				t.Errorf("describeUser = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	apiErr := func(code, retryAfter int) error {
		e := &ta.Error{ErrorCode: code, Description: "x"}
		if retryAfter > 0 {
			e.Parameters = &ta.ResponseParameters{RetryAfter: retryAfter}
		}
		return fmt.Errorf("api: %w", e)
	}
	dial := redactedError{msg: "dial", err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}
	read := &net.OpError{Op: "read", Err: errors.New("connection reset")}
	tests := []struct {
		name    string
		err     error
		attempt int
		want    time.Duration
		retry   bool
	}{
		{"429 with retry_after", apiErr(429, 3), 1, 3 * time.Second, true},
		{"429 without it backs off", apiErr(429, 0), 2, 2 * time.Second, true},
		{"refused connection", dial, 3, 4 * time.Second, true},
		{"reset connection may have arrived", read, 1, 0, false},
		{"bad request", apiErr(400, 0), 1, 0, false},
		{"server error may have arrived", errors.New("internal server error: 500"), 1, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, retry := retryDelay(tc.err, tc.attempt, time.Second)
			if got != tc.want || retry != tc.retry {
				t.Errorf("retryDelay = %v, %v; want %v, %v", got, retry, tc.want, tc.retry)
			}
		})
	}
}

func TestRedactingErrors(t *testing.T) {
	inner := &net.OpError{Op: "dial", Err: errors.New("bad")}
	err := redactedError{msg: "post https://x/bot<token>/getMe: bad", err: inner}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Errorf("redactedError hides the wrapped error from errors.As")
	}
}

func TestOptionsValidate(t *testing.T) {
	base := Options{Token: testToken, APIURL: "http://127.0.0.1:1", StorePath: "bot.db",
		Texts:        Texts{Greeting: "g", Help: "h", Apology: "a", TooLong: "t", ResetReply: "r"},
		Limits:       Limits{ChatPerSecond: 1, GroupPerMinute: 20, GlobalPerSecond: 30},
		HistoryTurns: 12, ReplyTimeout: time.Second, ShutdownGrace: time.Second, SendDeadline: time.Second,
		MaxConcurrent: 1, QueueSize: 1, WebhookMaxConnections: 40, ClaimTTL: 15 * time.Second}
	tests := []struct {
		name string
		mod  func(*Options)
		ok   bool
	}{
		{"defaults", func(*Options) {}, true},
		{"no token", func(o *Options) { o.Token = "" }, false},
		{"bad mode", func(o *Options) { o.Mode = "push" }, false},
		{"webhook without secret", func(o *Options) { o.Mode, o.WebhookListen, o.WebhookURL = ModeWebhook, ":8443", "https://x" }, false},
		{"webhook complete", func(o *Options) {
			o.Mode, o.WebhookListen, o.WebhookURL, o.WebhookSecret = ModeWebhook, ":8443", "https://x", "s"
		}, true},
		{"chance over 100", func(o *Options) { o.GroupChance = 101 }, false},
		{"negative rate", func(o *Options) { o.Limits.ChatPerSecond = -1 }, false},
		// what a config sets has no default here: a zero is an error
		{"no greeting", func(o *Options) { o.Texts.Greeting = "" }, false},
		{"no rate limit", func(o *Options) { o.Limits = Limits{} }, false},
		{"no history", func(o *Options) { o.HistoryTurns = 0 }, false},
		{"no send deadline", func(o *Options) { o.SendDeadline = 0 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(&o)
			if err := o.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
