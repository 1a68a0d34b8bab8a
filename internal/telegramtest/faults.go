package telegramtest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Fault is an error the server answers one call with.
type Fault struct {
	Status     int  // HTTP status and Bot API error_code
	RetryAfter int  // seconds, for 429
	Network    bool // drop the connection without an answer
}

// Inject makes the next calls of method fail, one fault per call, in order.
func (s *Server) Inject(method string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], faults...)
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
	if f.Network {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	writeAPIError(w, f.Status, f.RetryAfter)
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
