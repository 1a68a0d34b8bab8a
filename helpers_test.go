package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/internal/testmodel"
	"github.com/dialogbot/dialogbot/torch"
)

// requireBridge skips without libcbridge.so, except under
// DIALOGBOT_REQUIRE_TORCH (make test, CI), where it fails.
func requireBridge(tb testing.TB) {
	tb.Helper()
	if os.Getenv("DIALOGBOT_CBRIDGE") == "" {
		if p := filepath.Join(testmodel.RepoRoot(), "bin", "libcbridge.so"); fileExists(p) {
			os.Setenv("DIALOGBOT_CBRIDGE", p)
		}
	}
	if err := torch.Available(); err != nil {
		if os.Getenv("DIALOGBOT_REQUIRE_TORCH") != "" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// runWithInput runs a command in-process with the given stdin.
func runWithInput(tb testing.TB, stdin string, args ...string) (code int, stdout, stderr string) {
	tb.Helper()
	var out, errOut strings.Builder
	code = runMain(context.Background(), args, stdio{in: strings.NewReader(stdin), out: &out, err: &errOut})
	return code, out.String(), errOut.String()
}
