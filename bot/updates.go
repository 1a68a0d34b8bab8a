package bot

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/mymmrac/telego"
	ta "github.com/mymmrac/telego/telegoapi"
)

// maxBackoff caps the wait between failed getUpdates calls.
const maxBackoff = 30 * time.Second

// poll long-polls getUpdates until ctx is done. It is our own loop rather
// than telego's so that shutdown interrupts even its retry waits, and so that
// the offset of the last update is confirmed before exit: otherwise Telegram
// would deliver those updates again after a restart, and they would be
// answered twice.
func (b *Bot) poll(ctx, work context.Context, d *dispatcher) error {
	if err := b.api.DeleteWebhook(ctx, &telego.DeleteWebhookParams{}); err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	offset, backoff := 0, b.opts.RetryBackoff
	for ctx.Err() == nil {
		updates, err := b.getUpdates(ctx, offset, b.opts.PollTimeout)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			wait := pollRetryDelay(err, backoff)
			b.log.Error("getting updates failed", "err", err, "retry_in", wait, "hint", pollHint(err))
			_ = sleepCtx(ctx, wait)
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		backoff = b.opts.RetryBackoff
		for _, u := range updates {
			if u.UpdateID >= offset {
				offset = u.UpdateID + 1
				d.dispatch(work, u)
			}
		}
	}
	b.confirm(ctx, offset)
	return nil
}

// getUpdates decodes each update on its own rather than through telego's
// GetUpdates: there one update it cannot read (a type newer than telego)
// fails the whole batch, again on every retry, and the bot would answer no
// one ever again. Such an update is logged and kept with its id only, so the
// offset moves past it.
func (b *Bot) getUpdates(ctx context.Context, offset int, timeout time.Duration) ([]telego.Update, error) {
	// The request gets a deadline of its own: a connection that silently died
	// would otherwise hang the loop forever.
	ctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	body, err := json.Marshal(&telego.GetUpdatesParams{
		Offset: offset, Timeout: int(timeout / time.Second),
		AllowedUpdates: []string{"message"}, // all the bot answers; spares the traffic of the rest
	})
	if err != nil {
		return nil, fmt.Errorf("get updates: %w", err)
	}
	caller := redactingCaller{next: ta.HTTPCaller{Client: b.client}, token: b.opts.Token}
	resp, err := caller.Call(ctx, b.opts.APIURL+"/bot"+b.opts.Token+"/getUpdates",
		&ta.RequestData{ContentType: ta.ContentTypeJSON, BodyRaw: body})
	switch {
	case err != nil:
		return nil, fmt.Errorf("get updates: %w", err)
	case !resp.Ok && resp.Error != nil:
		return nil, fmt.Errorf("get updates: %w", resp.Error)
	case !resp.Ok:
		return nil, errors.New("get updates: not ok")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(resp.Result, &raws); err != nil {
		return nil, fmt.Errorf("get updates: %w", err)
	}
	updates := make([]telego.Update, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &updates[i]); err != nil {
			var id struct {
				UpdateID int `json:"update_id"`
			}
			_ = json.Unmarshal(raw, &id)
			b.log.Warn("undecodable update skipped", "update_id", id.UpdateID, "err", err)
			updates[i] = telego.Update{UpdateID: id.UpdateID}
		}
	}
	return updates, nil
}

// confirm tells Telegram that every update before offset was received.
func (b *Bot) confirm(ctx context.Context, offset int) {
	if offset == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if _, err := b.getUpdates(ctx, offset, 0); err != nil {
		b.log.Warn("confirming the last updates failed; they may come again after a restart", "err", err)
	}
}

// pollHint says what a user can do about the Bot API errors of polling
// that a retry will not cure.
func pollHint(err error) string {
	var apiErr *ta.Error
	if !errors.As(err, &apiErr) {
		return ""
	}
	switch apiErr.ErrorCode {
	case http.StatusConflict:
		return "another process is polling with this token, or a webhook is set: stop the other instance"
	case http.StatusUnauthorized, http.StatusNotFound:
		return "the token is wrong or revoked: check TELEGRAM_BOT_TOKEN"
	}
	return ""
}

func pollRetryDelay(err error, backoff time.Duration) time.Duration {
	if d, ok := retryDelay(err, 1, backoff); ok {
		return max(d, backoff)
	}
	return backoff
}

// serveWebhook listens for updates, registers the webhook with its secret,
// and serves until ctx is done.
func (b *Bot) serveWebhook(ctx, work context.Context, d *dispatcher) error {
	ln, err := net.Listen("tcp", b.opts.WebhookListen)
	if err != nil {
		return fmt.Errorf("webhook listen: %w", err)
	}
	b.mu.Lock()
	b.webhookAddr = ln.Addr()
	b.mu.Unlock()
	srv := &http.Server{Handler: b.webhookHandler(work, d), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// Registered only once we listen, so Telegram never posts to a closed port.
	err = b.api.SetWebhook(ctx, &telego.SetWebhookParams{URL: b.opts.WebhookURL, SecretToken: b.opts.WebhookSecret})
	if err != nil {
		err = fmt.Errorf("set webhook: %w", err)
	} else {
		select {
		case <-ctx.Done():
		case err = <-served:
			return fmt.Errorf("webhook server: %w", err)
		}
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.ShutdownGrace)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	srv.Close()
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("webhook server: %w", serr)
	}
	return err
}

// maxUpdateSize bounds a webhook request body.
const maxUpdateSize = 1 << 20

// webhookHandler accepts updates posted by Telegram. The secret is checked on
// every request: the URL alone is no proof that the sender is Telegram.
func (b *Bot) webhookHandler(work context.Context, d *dispatcher) http.Handler {
	path := b.opts.WebhookPath
	if path == "" {
		path = "/"
	}
	secret := []byte(b.opts.WebhookSecret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != path:
			http.NotFound(w, r)
			return
		case r.Method != http.MethodPost:
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		case subtle.ConstantTimeCompare([]byte(r.Header.Get(telego.WebhookSecretTokenHeader)), secret) != 1:
			b.log.Warn("webhook request with a wrong secret refused", "remote", r.RemoteAddr)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		var u telego.Update
		if err := json.NewDecoder(io.LimitReader(r.Body, maxUpdateSize)).Decode(&u); err != nil {
			// Acknowledged all the same: Telegram would redeliver it forever.
			b.log.Warn("undecodable webhook update dropped", "err", err)
			return
		}
		d.dispatch(work, u)
		w.WriteHeader(http.StatusOK)
	})
}
