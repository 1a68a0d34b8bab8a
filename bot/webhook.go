package bot

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mymmrac/telego"
)

// Webhook server bounds: Telegram sends small requests quickly, so anything
// slower or bigger is someone else holding a connection open.
const (
	webhookHeaderTimeout = 5 * time.Second
	webhookReadTimeout   = 10 * time.Second
	webhookWriteTimeout  = 10 * time.Second
	webhookIdleTimeout   = 60 * time.Second
	webhookMaxHeader     = 16 << 10
	maxUpdateSize        = 1 << 20 // a webhook request body
)

// allowedUpdates are the update types the bot handles; Telegram sends no others.
var allowedUpdates = []string{"message"}

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
	guard := newConnGuard(b.opts.WebhookMaxOpen)
	b.mu.Lock()
	b.guard = guard
	b.mu.Unlock()
	srv := &http.Server{
		Handler:           b.webhookHandler(ctx, work, d),
		ReadHeaderTimeout: webhookHeaderTimeout, ReadTimeout: webhookReadTimeout,
		WriteTimeout: webhookWriteTimeout, IdleTimeout: webhookIdleTimeout, MaxHeaderBytes: webhookMaxHeader,
		ConnState: guard.track,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// Registered only once we listen, so Telegram never posts to a closed port.
	err = b.startCall(ctx, "set webhook", func() error {
		return b.api.SetWebhook(ctx, &telego.SetWebhookParams{URL: b.opts.WebhookURL, SecretToken: b.opts.WebhookSecret,
			AllowedUpdates: allowedUpdates, MaxConnections: b.opts.WebhookMaxConnections})
	})
	if err == nil {
		select {
		case <-ctx.Done():
		case err = <-served:
			return fmt.Errorf("webhook server: %w", err)
		}
	}
	err = nil // stopped, during start-up or after
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.ShutdownGrace)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	srv.Close()
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = fmt.Errorf("webhook server: %w", serr)
	}
	if n := guard.shed(); n > 0 {
		b.log.Info("webhook connections closed to make room for new ones", "count", n)
	}
	return err
}

// webhookHandler accepts updates posted by Telegram. The secret is checked on
// every request: the URL alone is no proof that the sender is Telegram. The
// update is in the inbox before the 200: a 500 makes Telegram send it again.
func (b *Bot) webhookHandler(ctx, work context.Context, d *dispatcher) http.Handler {
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
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxUpdateSize))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		if err != nil {
			return // the connection broke: Telegram sends it again
		}
		id, err := updateID(body)
		if err != nil {
			// Acknowledged all the same: Telegram would redeliver it forever.
			b.log.Warn("undecodable webhook update dropped", "err", err)
			return
		}
		if err := b.accept(ctx, work, d, []Incoming{{UpdateID: id, Body: body}}); err != nil {
			b.log.Error("storing a webhook update failed; Telegram will send it again", "update_id", id, "err", err)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// connGuard keeps the webhook server's open connections under a bound by
// closing the longest-idle one (connected but not in a request) when a new
// one would pass it. Idle connections are what someone who does not know
// the secret can hold open; closing the oldest leaves room for Telegram,
// where refusing new ones (or running out of file descriptors) would lock
// it out.
type connGuard struct {
	max int

	mu     sync.Mutex
	open   int
	idle   map[net.Conn]time.Time // connections between requests, since when
	closed int
}

func newConnGuard(max int) *connGuard {
	return &connGuard{max: max, idle: map[net.Conn]time.Time{}}
}

// track is the server's ConnState hook.
func (g *connGuard) track(c net.Conn, state http.ConnState) {
	var victim net.Conn
	g.mu.Lock()
	switch state {
	case http.StateNew:
		g.open++
		g.idle[c] = time.Now()
		if g.open > g.max {
			victim = g.oldestIdleLocked(c)
		}
	case http.StateActive:
		delete(g.idle, c)
	case http.StateIdle:
		g.idle[c] = time.Now()
	case http.StateHijacked, http.StateClosed:
		delete(g.idle, c)
		g.open--
	}
	if victim != nil {
		delete(g.idle, victim) // closed below; StateClosed follows and counts it
		g.closed++
	}
	g.mu.Unlock()
	if victim != nil {
		victim.Close()
	}
}

func (g *connGuard) oldestIdleLocked(except net.Conn) net.Conn {
	var oldest net.Conn
	var since time.Time
	for c, t := range g.idle {
		if c != except && (oldest == nil || t.Before(since)) {
			oldest, since = c, t
		}
	}
	return oldest
}

// shedConns is how many webhook connections were closed to make room.
func (b *Bot) shedConns() int {
	b.mu.Lock()
	g := b.guard
	b.mu.Unlock()
	if g == nil {
		return 0
	}
	return g.shed()
}

// shed is how many connections were closed to make room.
func (g *connGuard) shed() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}
