package telegramtest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Fault is an error the server answers one call with. Exactly one of
// Status, Network, ResetBefore, ResetAfter and HTML is set.
type Fault struct {
	Status     int // HTTP status and Bot API error_code
	RetryAfter int // seconds, for 429
	// Network drops the connection after reading the request, without
	// acting on it: the request reached the server and was lost there.
	Network bool
	// ResetBefore drops the connection before reading the request body: a
	// client that sent "Expect: 100-continue" never sent the body.
	ResetBefore bool
	// ResetAfter acts on the request (a sendMessage is recorded as sent)
	// and then drops the connection instead of answering.
	ResetAfter bool
	// HTML answers 200 with an HTML page, as a misbehaving proxy might,
	// without acting on the request.
	HTML bool
}

// Inject makes the next calls of method fail, one fault per call, in order.
func (s *Server) Inject(method string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], faults...)
}

// FailText makes every sendMessage of exactly text fail with status, for
// good (a message Telegram keeps refusing); status 0 ends that.
func (s *Server) FailText(text string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.failText, text)
		return
	}
	s.failText[text] = status
}

// takeFault counts a call of method and returns the fault queued for it.
func (s *Server) takeFault(method string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[method]++
	q := s.faults[method]
	if len(q) == 0 {
		return Fault{}, false
	}
	s.faults[method] = q[1:]
	return q[0], true
}

func (f Fault) write(w http.ResponseWriter) {
	switch {
	case f.Network || f.ResetBefore || f.ResetAfter:
		drop(w)
	case f.HTML:
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	default:
		writeAPIError(w, f.Status, f.RetryAfter)
	}
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// writeAPIError answers as the Bot API does: ok false, the error code, and
// for 429 the seconds to wait in parameters.retry_after.
func writeAPIError(w http.ResponseWriter, status, retryAfter int) {
	body := map[string]any{"ok": false, "error_code": status, "description": http.StatusText(status)}
	if retryAfter > 0 {
		body["parameters"] = map[string]int{"retry_after": retryAfter}
		body["description"] = fmt.Sprintf("Too Many Requests: retry after %d", retryAfter)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}
