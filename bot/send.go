package bot

import (
	"context"
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

// maxSendAttempts bounds the retries of one message.
const maxSendAttempts = 5

// sender sends messages within the rate limits. It retries a message only
// when Telegram surely did not take it (a 429, or a connection that was never
// made), so no message is ever sent twice; telego's own retrying caller is not
// used because it also retries sends that may have arrived.
type sender struct {
	api     *telego.Bot
	lim     *limiter
	log     *slog.Logger
	sleep   func(ctx context.Context, d time.Duration) error
	backoff time.Duration
}

// sendText sends text, split to Telegram's limit; a non-zero replyTo makes the
// first piece a reply to that message.
func (s *sender) sendText(ctx context.Context, chat telego.Chat, replyTo int, text string) error {
	for i, part := range splitMessage(text, MaxMessageLen) {
		p := &telego.SendMessageParams{ChatID: tu.ID(chat.ID), Text: part}
		if replyTo != 0 && i == 0 {
			p.ReplyParameters = &telego.ReplyParameters{MessageID: replyTo, AllowSendingWithoutReply: true}
		}
		if err := s.send(ctx, p, isGroup(chat)); err != nil {
			return fmt.Errorf("send message to chat %d: %w", chat.ID, err)
		}
	}
	return nil
}

func (s *sender) send(ctx context.Context, p *telego.SendMessageParams, group bool) error {
	for attempt := 1; ; attempt++ {
		if err := s.lim.wait(ctx, p.ChatID.ID, group); err != nil {
			return err
		}
		_, err := s.api.SendMessage(ctx, p)
		if err == nil {
			return nil
		}
		delay, ok := retryDelay(err, attempt, s.backoff)
		if !ok || attempt >= maxSendAttempts {
			return err
		}
		s.log.Warn("telegram refused a message, retrying", "chat_id", p.ChatID.ID, "attempt", attempt, "wait", delay, "err", err)
		if err := s.sleep(ctx, delay); err != nil {
			return err
		}
	}
}

// retryDelay says whether a failed call surely had no effect, so that it may
// be repeated, and how long to wait first.
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
