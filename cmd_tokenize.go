package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dialogbot/dialogbot/model/tokenizer"
)

func init() {
	register("tokenize", "turn JSON strings into token ids, one per line (or back with --decode)", runTokenize)
}

// maxTokenizeLine bounds one input line; a whole document on one line is fine.
const maxTokenizeLine = 64 << 20

func runTokenize(ctx context.Context, args []string, s stdio) error {
	fs := newFlagSet("tokenize", s)
	path := fs.String("tokenizer", "", "Hugging Face tokenizer.json `file` (required)")
	decode := fs.Bool("decode", false, "read JSON arrays of ids and print JSON strings")
	fs.Usage = func() {
		fmt.Fprintln(s.err, "usage: dialogbot tokenize --tokenizer FILE [--decode] < lines\n\n"+
			"Reads one JSON string per line and prints its token ids as a JSON array;\n"+
			"with --decode reads arrays of ids and prints JSON strings. Blank lines are skipped.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("%w: --tokenizer is required", errUsage)
	}
	tok, err := tokenizer.LoadTokenizer(*path)
	if err != nil {
		return err
	}
	convert := encodeLine
	if *decode {
		convert = decodeLine
	}
	return tokenizeLines(ctx, tok, convert, s)
}

// tokenizeLines converts stdin to stdout line by line, flushing each answer
// so that the command can be driven interactively through a pipe.
func tokenizeLines(ctx context.Context, tok *tokenizer.Tokenizer, convert func(*tokenizer.Tokenizer, []byte) (any, error), s stdio) error {
	in := bufio.NewScanner(s.in)
	in.Buffer(make([]byte, 0, 64<<10), maxTokenizeLine)
	out := bufio.NewWriter(s.out)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false) // keep "<|endoftext|>" readable
	for n := 1; in.Scan(); n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		line := bytes.TrimSpace(in.Bytes())
		if len(line) == 0 {
			continue
		}
		v, err := convert(tok, line)
		if err == nil {
			err = enc.Encode(v)
		}
		if err == nil {
			err = out.Flush()
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := in.Err(); err != nil {
		return fmt.Errorf("read input: %w", err)
	}
	return nil
}

// encodeLine turns a JSON string into its ids. The first byte is checked
// because json.Unmarshal would take null for an empty string.
func encodeLine(tok *tokenizer.Tokenizer, line []byte) (any, error) {
	var text string
	if line[0] != '"' {
		return nil, errors.New("want a JSON string")
	}
	if err := json.Unmarshal(line, &text); err != nil {
		return nil, fmt.Errorf("want a JSON string: %w", err)
	}
	ids := tok.Encode(text)
	if ids == nil {
		ids = []int{} // "[]", not "null"
	}
	return ids, nil
}

// decodeLine turns a JSON array of ids into text. Unlike Tokenizer.Decode,
// which skips unknown ids as Hugging Face does, it refuses ids outside the
// vocab: here they are almost certainly a mistake worth reporting.
func decodeLine(tok *tokenizer.Tokenizer, line []byte) (any, error) {
	var ids []int
	if line[0] != '[' {
		return nil, errors.New("want a JSON array of token ids")
	}
	if err := json.Unmarshal(line, &ids); err != nil {
		return nil, fmt.Errorf("want a JSON array of token ids: %w", err)
	}
	for _, id := range ids {
		if id < 0 || id >= tok.VocabSize() {
			return nil, fmt.Errorf("token id %d outside the vocab (size %d)", id, tok.VocabSize())
		}
	}
	return tok.Decode(ids), nil
}
