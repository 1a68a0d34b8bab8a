// Package ops serves serve's operations endpoints on a local address:
// GET /healthz (ready once the model is loaded and the Bot API answered)
// and GET /metrics (Prometheus text). The metrics are read from the bot's
// and the engine's own counters when scraped, so no package below has to
// know about Prometheus.
package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health is what /healthz answers: ready once both steps of the start-up
// are done. Its methods may be called from any goroutine.
type Health struct {
	model, api atomic.Bool
}

// ModelLoaded records that the model is loaded.
func (h *Health) ModelLoaded() { h.model.Store(true) }

// APIAnswered records that the Bot API answered getMe.
func (h *Health) APIAnswered() { h.api.Store(true) }

// Ready says whether the bot can serve, and if not, what it waits for.
func (h *Health) Ready() (bool, string) {
	switch {
	case !h.model.Load():
		return false, "loading the model"
	case !h.api.Load():
		return false, "waiting for the Bot API to answer getMe"
	}
	return true, "ready"
}

func (h *Health) serveHTTP(w http.ResponseWriter, _ *http.Request) {
	ok, why := h.Ready()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, why)
}

// Handler routes /healthz and /metrics (gathered from reg); anything else is 404.
func Handler(h *Health, reg prometheus.Gatherer, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.serveHTTP)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A store that cannot be counted costs its gauge, not the scrape.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Timeout:       10 * time.Second,
	}))
	return mux
}

// Server is the operations HTTP server.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Listen binds addr at once (so a taken port fails the start, not later)
// and serves h on it until Close.
func Listen(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ops.listen: %w", err)
	}
	s := &Server{ln: ln, done: make(chan error, 1),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the address the server listens on (the port chosen for ":0").
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server, giving requests in flight until ctx is done.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
