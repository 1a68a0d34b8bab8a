package dataset

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The token-level helpers of tgParser: each turns a decoder error into one
// PositionError, so no caller has to think about offsets.

func (p *tgParser) token() (json.Token, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return nil, p.fail(err)
	}
	return tok, nil
}

func (p *tgParser) expectDelim(want json.Delim, what string) error {
	at := p.dec.InputOffset()
	tok, err := p.token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return &PositionError{Offset: at, What: what, Err: fmt.Errorf("want %q, found %v", want, tok)}
	}
	return nil
}

// expectEnd checks that nothing but white space follows the document.
func (p *tgParser) expectEnd() error {
	at := p.dec.InputOffset()
	if _, err := p.dec.Token(); !errors.Is(err, io.EOF) {
		return &PositionError{Offset: at, What: "malformed JSON", Err: errors.New("unexpected data after the end of the export")}
	}
	return nil
}

func (p *tgParser) key() (string, error) {
	tok, err := p.token()
	if err != nil {
		return "", err
	}
	k, ok := tok.(string)
	if !ok {
		return "", &PositionError{Offset: p.dec.InputOffset(), What: "malformed JSON", Err: fmt.Errorf("want an object key, found %v", tok)}
	}
	return k, nil
}

func (p *tgParser) decode(v any) error {
	start := p.dec.InputOffset()
	err := p.dec.Decode(v)
	// Only the decoder's own type errors have an offset; those an UnmarshalJSON
	// method wraps count from that method's input.
	typ, isType := err.(*json.UnmarshalTypeError)
	switch {
	case err == nil:
		return nil
	case isType:
		// Its offset counts from the start of the value decoded.
		return &PositionError{Offset: start + typ.Offset, What: "unexpected JSON value", Err: err}
	case isDecodeFailure(err):
		return p.fail(err)
	}
	// An error of an UnmarshalJSON method (tgText) carries no offset.
	return &PositionError{Offset: start, What: "unexpected JSON value", Err: err}
}

func isDecodeFailure(err error) bool {
	var syn *json.SyntaxError
	return errors.As(err, &syn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errRead)
}

// skip reads past one value of any size without keeping it.
func (p *tgParser) skip() error {
	depth := 0
	for {
		tok, err := p.token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// fail gives a decoder error the byte offset where it happened. A file that
// ends too early is reported at its end: all of it was read.
func (p *tgParser) fail(err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return &PositionError{Offset: syn.Offset, What: "malformed JSON", Err: err}
	case errors.Is(err, errRead):
		return &PositionError{Offset: p.in.n, What: "reading", Err: err}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &PositionError{Offset: p.in.n, What: "truncated file", Err: io.ErrUnexpectedEOF}
	}
	return &PositionError{Offset: p.dec.InputOffset(), What: "reading", Err: err}
}

// errRead marks an error of the underlying reader, so that an I/O failure
// is not mistaken for bad JSON.
var errRead = errors.New("read error")

// countingReader counts the bytes the decoder has taken from the input.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: %w", errRead, err)
	}
	return n, err
}
