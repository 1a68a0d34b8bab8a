package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A failed Bot API call is one of three kinds, and only the caller of a
// send can act on them: retry it, give up, or take it as sent.
type callKind int

const (
	// retryable: Telegram surely did not act on the request (a 429, a 5xx,
	// an answer that is not JSON, or a request whose body never left).
	retryable callKind = iota
	// ambiguous: the body was sent and then the answer was lost (a reset, a
	// timeout): Telegram may have acted on it.
	ambiguous
	// permanent: Telegram refused it (400, 403...); a retry would be refused too.
	permanent
)

// callError is a failed Bot API call with what the sender needs to decide.
type callError struct {
	kind       callKind
	retryAfter time.Duration // 429's parameters.retry_after
	code       int           // Bot API error_code or HTTP status; 0 for a transport error
	err        error
}

func (e *callError) Error() string { return e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

// sentBody is a request body that tells whether the transport read all of
// it: the evidence that the request left. With "Expect: 100-continue" the
// transport reads it only once the server asked for it, so a connection
// reset before that is surely a request Telegram never saw. leaving, when
// set, runs before the first byte is handed over; if it fails, no byte is.
type sentBody struct {
	r        *bytes.Reader
	leaving  func() error
	started  atomic.Bool // leaving ran and succeeded
	done     atomic.Bool // every byte was handed to the transport
	mu       sync.Mutex
	leaveErr error // what leaving failed with
}

func (b *sentBody) Read(p []byte) (int, error) {
	if !b.started.Load() {
		if b.leaving != nil {
			if err := b.leaving(); err != nil {
				b.mu.Lock()
				b.leaveErr = err
				b.mu.Unlock()
				return 0, err
			}
		}
		b.started.Store(true)
	}
	n, err := b.r.Read(p)
	if b.r.Len() == 0 {
		b.done.Store(true)
	}
	return n, err
}

// maxAnswer bounds the Bot API answer read into memory.
const maxAnswer = 1 << 20

// call posts params to a Bot API method and returns its result; a failure
// is a *callError. leaving (may be nil) runs just before the body leaves
// (see sentBody); started reports whether it ran. It is not telego's caller
// because that one can neither tell a request that left from one that did
// not, nor read a 5xx's body.
func (c *apiClient) call(ctx context.Context, method string, params any, leaving func() error) (_ json.RawMessage, started bool, _ error) {
	data, err := json.Marshal(params)
	if err != nil {
		return nil, false, &callError{kind: permanent, err: fmt.Errorf("%s: %w", method, err)}
	}
	body := &sentBody{r: bytes.NewReader(data), leaving: leaving}
	raw, err := c.do(ctx, method, body)
	body.mu.Lock()
	leaveErr := body.leaveErr
	body.mu.Unlock()
	if err != nil && leaveErr != nil {
		// Recording the send failed, so it was not sent; retrying cannot
		// help if the chat belongs to another replica now.
		kind := retryable
		if errors.Is(leaveErr, ErrNotOwner) {
			kind = permanent
		}
		return nil, false, &callError{kind: kind, err: fmt.Errorf("%s: %w", method, leaveErr)}
	}
	return raw, body.started.Load(), err
}

func (c *apiClient) do(ctx context.Context, method string, body *sentBody) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/bot"+c.token+"/"+method, body)
	if err != nil {
		return nil, &callError{kind: permanent, err: fmt.Errorf("%s: %w", c.redact(err), err)}
	}
	req.ContentLength = int64(body.r.Len())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Expect", "100-continue")
	resp, err := c.client.Do(req)
	if err != nil {
		kind := retryable
		if body.done.Load() {
			kind = ambiguous
		}
		return nil, &callError{kind: kind, err: redactedError{msg: method + ": " + c.redact(err), err: err}}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		// The request arrived (an answer started): Telegram acted on it.
		return nil, &callError{kind: ambiguous, code: resp.StatusCode, err: fmt.Errorf("%s: reading the answer: %s", method, c.redact(err))}
	}
	return decodeAnswer(method, resp.StatusCode, raw)
}

// decodeAnswer reads the Bot API's {"ok": ..., "result": ...} envelope.
func decodeAnswer(method string, status int, raw []byte) (json.RawMessage, error) {
	var ans struct {
		OK          bool            `json:"ok"`
		Result      json.RawMessage `json:"result"`
		ErrorCode   int             `json:"error_code"`
		Description string          `json:"description"`
		Parameters  *struct {
			RetryAfter int `json:"retry_after"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil || (!ans.OK && ans.ErrorCode == 0) {
		// A proxy's HTML page, even with status 200: not Telegram's answer.
		return nil, &callError{kind: retryable, code: status,
			err: fmt.Errorf("%s: answer is not the Bot API's (HTTP %d): %q", method, status, snippet(raw))}
	}
	if ans.OK {
		return ans.Result, nil
	}
	e := &callError{kind: permanent, code: ans.ErrorCode, err: fmt.Errorf("%s: %d %s", method, ans.ErrorCode, ans.Description)}
	switch {
	case ans.ErrorCode == http.StatusTooManyRequests:
		e.kind = retryable
		if ans.Parameters != nil {
			e.retryAfter = time.Duration(ans.Parameters.RetryAfter) * time.Second
		}
	case ans.ErrorCode >= 500:
		e.kind = retryable
	}
	return nil, e
}

func snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}

// apiClient calls the Bot API for the sends, which must know whether a
// request left (see sentBody).
type apiClient struct {
	client *http.Client
	url    string
	token  string
}

func (c *apiClient) redact(err error) string {
	return strings.ReplaceAll(err.Error(), c.token, redacted)
}

// errKind is the kind of a send's error: a *callError's, or retryable for
// anything else that happened before the request (none of ours).
func errKind(err error) (callKind, *callError) {
	var ce *callError
	if errors.As(err, &ce) {
		return ce.kind, ce
	}
	return permanent, nil
}
