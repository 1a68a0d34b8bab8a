package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

const tokenizeFixture = "model/tokenizer/testdata/tokenizer/tiny.json"

// runTokenizeCmd runs `dialogbot tokenize args...` in-process on input.
func runTokenizeCmd(tb testing.TB, input string, args ...string) (code int, stdout, stderr string) {
	tb.Helper()
	var out, errOut bytes.Buffer
	code = runMain(context.Background(), append([]string{"tokenize"}, args...),
		stdio{in: strings.NewReader(input), out: &out, err: &errOut})
	return code, out.String(), errOut.String()
}

func TestTokenizeCommand(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		input      string
		wantCode   int
		wantOut    string
		wantErrHas string
	}{
		{"encode lines", []string{"--tokenizer", tokenizeFixture},
			"\"ab\"\n\"a<|endoftext|>b\"\n\"\"\n\"пр\\n\"\n", 0, "[32]\n[1,50,2]\n[]\n[39,13]\n", ""},
		{"blank lines skipped, no final newline", []string{"--tokenizer", tokenizeFixture},
			"\n  \n\"aaaa\"", 0, "[33]\n", ""},
		{"decode lines", []string{"--tokenizer", tokenizeFixture, "--decode"},
			"[39]\n[1, 50]\n[]\n[23,24,25]\n", 0, "\"пр\"\n\"a<|endoftext|>\"\n\"\"\n\"\uFFFD\"\n", ""},
		{"bad line names its number", []string{"--tokenizer", tokenizeFixture},
			"\"ab\"\nab\n\"ab\"\n", 1, "[32]\n", "line 2: want a JSON string"},
		{"null is not a string", []string{"--tokenizer", tokenizeFixture},
			"null\n", 1, "", "line 1: want a JSON string"},
		{"unterminated string", []string{"--tokenizer", tokenizeFixture},
			"\"ab\n", 1, "", "line 1: want a JSON string"},
		{"decode wants arrays", []string{"--tokenizer", tokenizeFixture, "--decode"},
			"[1]\n\"ab\"\n", 1, "\"a\"\n", "line 2: want a JSON array"},
		{"decode refuses unknown ids", []string{"--tokenizer", tokenizeFixture, "--decode"},
			"[1, 57]\n", 1, "", "line 1: token id 57 outside the vocab"},
		{"decode refuses fractions", []string{"--tokenizer", tokenizeFixture, "--decode"},
			"[1.5]\n", 1, "", "line 1: want a JSON array"},
		{"tokenizer is required", nil, "\"ab\"\n", 2, "", "--tokenizer is required"},
		{"missing tokenizer file", []string{"--tokenizer", "testdata/nope.json"}, "\"ab\"\n", 1, "", "load tokenizer"},
		{"unexpected argument", []string{"--tokenizer", tokenizeFixture, "extra"}, "", 2, "", "unexpected arguments"},
		{"help", []string{"-h"}, "", 0, "", "usage: dialogbot tokenize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runTokenizeCmd(t, tt.input, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			if out != tt.wantOut {
				t.Errorf("stdout %q, want %q", out, tt.wantOut)
			}
			if !strings.Contains(errOut, tt.wantErrHas) {
				t.Errorf("stderr %q does not contain %q", errOut, tt.wantErrHas)
			}
		})
	}
}
