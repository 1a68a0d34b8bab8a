package main

import (
	"context"
	"os"
	"path/filepath"
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

// validToken has the shape of a bot token.
const validToken = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456_-"

// writeConfig writes a config file in a temporary folder.
func writeConfig(t testing.TB, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
