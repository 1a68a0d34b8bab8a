package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/mymmrac/telego"
	ta "github.com/mymmrac/telego/telegoapi"
	tu "github.com/mymmrac/telego/telegoutil"
)

// maxBackoff caps the wait between failed calls.
const maxBackoff = 30 * time.Second

// maxAttemptTime bounds one sendMessage request, so a connection that died
// silently is given up (and retried, or taken as sent) within the deadline.
const maxAttemptTime = 20 * time.Second

// errAmbiguous marks a send whose request reached Telegram but whose answer
// was lost: it is taken as sent (see docs/reliability.md).
var errAmbiguous = errors.New("the request reached Telegram but its answer was lost")

// sender sends messages within the rate limits and retries them until a
// deadline: on 429 after retry_after, on 5xx, on answers that are not the Bot
// API's and on requests that surely did not leave. A request that did leave
// and lost its answer is not repeated: it is reported as errAmbiguous.
type sender struct {
	api     *apiClient
	lim     *limiter
	log     *slog.Logger
	stats   *counters
	sleep   func(ctx context.Context, d time.Duration) error
	backoff time.Duration
}

// sendParams is one message to send.
type sendParams struct {
	chatID  int64
	group   bool
	replyTo int
	text    string
}

// outboxHooks record a message's way out: leaving runs just before its
// body leaves (it records the send as in flight; if it fails, nothing is
// sent), back after an attempt that ran leaving failed without the message
// leaving (it records the send as not in flight).
type outboxHooks struct {
	leaving, back func() error
}

// send sends one message (within Telegram's length limit) and returns its
// id. It retries until deadline has passed since the first attempt; then
// the last error is returned.
func (s *sender) send(ctx context.Context, p sendParams, deadline time.Duration, hooks outboxHooks) (int, error) {
	end := time.Now().Add(deadline)
	params := &telego.SendMessageParams{ChatID: tu.ID(p.chatID), Text: p.text}
	if p.replyTo != 0 {
		params.ReplyParameters = &telego.ReplyParameters{MessageID: p.replyTo, AllowSendingWithoutReply: true}
	}
	for attempt := 1; ; attempt++ {
		if err := s.lim.wait(ctx, p.chatID, p.group); err != nil {
			return 0, err
		}
		id, started, err := s.attempt(ctx, params, end, hooks.leaving)
		kind, ce := errKind(err)
		if started && err != nil && kind != ambiguous && hooks.back != nil {
			if berr := hooks.back(); berr != nil {
				return 0, fmt.Errorf("send to chat %d: %w (and recording that failed: %w)", p.chatID, err, berr)
			}
		}
		switch {
		case err == nil:
			return id, nil
		case ctx.Err() != nil && kind != ambiguous:
			return 0, fmt.Errorf("send to chat %d: %w", p.chatID, ctx.Err())
		case kind == ambiguous:
			return 0, fmt.Errorf("send to chat %d: %w: %w", p.chatID, errAmbiguous, err)
		case kind == permanent:
			return 0, fmt.Errorf("send to chat %d: %w", p.chatID, err)
		}
		delay := backoffDelay(s.backoff, attempt)
		if ce.retryAfter > 0 {
			delay = ce.retryAfter
		}
		if time.Now().Add(delay).After(end) {
			return 0, fmt.Errorf("send to chat %d: gave up after %d attempts in %v: %w", p.chatID, attempt, deadline, err)
		}
		s.stats.retries.Add(1)
		s.log.Warn("sending failed, retrying", "chat_id", p.chatID, "attempt", attempt, "wait", delay, "err", err)
		if err := s.sleep(ctx, delay); err != nil {
			return 0, fmt.Errorf("send to chat %d: %w", p.chatID, err)
		}
	}
}

// attempt makes one sendMessage request, bounded by maxAttemptTime and end;
// started says whether leaving ran.
func (s *sender) attempt(ctx context.Context, params *telego.SendMessageParams, end time.Time, leaving func() error) (int, bool, error) {
	ctx, cancel := context.WithDeadline(ctx, minTime(end, time.Now().Add(maxAttemptTime)))
	defer cancel()
	raw, started, err := s.api.call(ctx, "sendMessage", params, leaving)
	if err != nil {
		return 0, started, err
	}
	var m struct {
		MessageID int `json:"message_id"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		// Telegram took the message; only its answer is odd.
		return 0, started, &callError{kind: ambiguous, err: fmt.Errorf("sendMessage: result: %w", err)}
	}
	return m.MessageID, started, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// backoffDelay doubles base with each attempt, up to maxBackoff.
func backoffDelay(base time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// retryDelay says whether a failed telego call (getUpdates and the
// start-up calls) may be repeated, and how long to wait first.
func retryDelay(err error, attempt int, backoff time.Duration) (time.Duration, bool) {
	var apiErr *ta.Error
	if errors.As(err, &apiErr) && apiErr.ErrorCode == http.StatusTooManyRequests {
		if apiErr.Parameters != nil && apiErr.Parameters.RetryAfter > 0 {
			return time.Duration(apiErr.Parameters.RetryAfter) * time.Second, true
		}
		return backoff << (attempt - 1), true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return backoff << (attempt - 1), true
	}
	return 0, false
}

func isGroup(chat telego.Chat) bool {
	return chat.Type == telego.ChatTypeGroup || chat.Type == telego.ChatTypeSupergroup
}

// keepTyping shows "typing" in a chat until the returned stop is called,
// repeating it because Telegram shows it for only about five seconds.
func (b *Bot) keepTyping(ctx context.Context, chatID int64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			err := b.api.SendChatAction(ctx, &telego.SendChatActionParams{ChatID: tu.ID(chatID), Action: telego.ChatActionTyping})
			if err != nil && ctx.Err() == nil {
				b.log.Debug("typing action failed", "chat_id", chatID, "err", err)
			}
			if sleepCtx(ctx, b.opts.TypingInterval) != nil {
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}
