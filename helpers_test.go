package main

import (
	"context"
	"strings"
	"testing"
)

// runWithInput runs a command in-process with the given stdin.
func runWithInput(tb testing.TB, stdin string, args ...string) (code int, stdout, stderr string) {
	tb.Helper()
	var out, errOut strings.Builder
	code = runMain(context.Background(), args, stdio{in: strings.NewReader(stdin), out: &out, err: &errOut})
	return code, out.String(), errOut.String()
}
