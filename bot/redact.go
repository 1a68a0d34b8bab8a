package bot

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	ta "github.com/mymmrac/telego/telegoapi"
)

// redacted is what the token becomes in logs and errors.
const redacted = "<token>"

// telegoLogger passes telego's own log lines to slog at debug level (we log
// the errors that matter ourselves), with the token cut out: telego logs
// request URLs, and the token is part of every URL.
type telegoLogger struct {
	log   *slog.Logger
	token string
}

func (l telegoLogger) Debugf(format string, args ...any) {
	l.log.Debug(strings.ReplaceAll(fmt.Sprintf(format, args...), l.token, redacted), "source", "telego")
}

func (l telegoLogger) Errorf(format string, args ...any) {
	l.log.Debug(strings.ReplaceAll(fmt.Sprintf(format, args...), l.token, redacted), "source", "telego", "telego_level", "error")
}

// redactingCaller makes every transport error token-free: net/http puts the
// request URL, token included, into its errors, and those end up in our logs.
type redactingCaller struct {
	next  ta.Caller
	token string
}

func (c redactingCaller) Call(ctx context.Context, url string, data *ta.RequestData) (*ta.Response, error) {
	resp, err := c.next.Call(ctx, url, data)
	if err != nil {
		return nil, redactedError{msg: strings.ReplaceAll(err.Error(), c.token, redacted), err: err}
	}
	return resp, nil
}

// redactedError keeps the wrapped error for errors.Is/As but prints without the token.
type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }
