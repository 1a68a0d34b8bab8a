// Package testmodel finds the shared test data and exports the shared
// Hugging Face test models to TorchScript, once, for tests of any package.
package testmodel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/internal/pyenv"
	"github.com/dialogbot/dialogbot/torch"
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// SharedDir is ../shared beside the repository (or $DIALOGBOT_SHARED); the
// test is skipped when it is absent, as in a user's fresh clone.
func SharedDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("DIALOGBOT_SHARED")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "..", "shared")
	}
	if _, err := os.Stat(filepath.Join(dir, "models")); err != nil {
		tb.Skipf("shared test data not found at %s (set DIALOGBOT_SHARED): %v", dir, err)
	}
	return dir
}

// Python finds a Python that can import torch (pyenv.Python).
func Python() (string, error) {
	return pyenv.Python(context.Background())
}

// Export exports ../shared/models/NAME with model/python/export.py into
// build/testmodels/NAME (reused when already there) and returns that dir.
// Extra export flags get a directory of their own (NAME_quantize_int8).
func Export(tb testing.TB, name string, extra ...string) string {
	tb.Helper()
	src := filepath.Join(SharedDir(tb), "models", name)
	dir := name
	for _, a := range extra {
		dir += "_" + strings.TrimLeft(filepath.Base(a), "-")
	}
	return exportTo(tb, dir, append([]string{"--hf", src}, extra...))
}

// ExportRandom exports a randomly initialised model of a named shape
// (export.py --random-shape) with the given tokenizer file.
func ExportRandom(tb testing.TB, shape, tokenizer string) string {
	tb.Helper()
	return exportTo(tb, "random-"+shape, []string{"--random-shape", shape, "--tokenizer", tokenizer})
}

func exportTo(tb testing.TB, name string, args []string) string {
	tb.Helper()
	out := filepath.Join(modelsDir(), name)
	stamp, err := exportCodeStamp()
	if err != nil {
		tb.Fatalf("export %s: %v", name, err)
	}
	if b, err := os.ReadFile(filepath.Join(out, stampFile)); err == nil && string(b) == stamp {
		return out
	}
	py, err := Python()
	if err != nil {
		tb.Fatalf("export %s: %v", name, err)
	}
	// Export into a temporary directory and rename it, so test packages
	// running in parallel never see a half-written model.
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		tb.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), name+".tmp")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	script := filepath.Join(RepoRoot(), "model", "python", "export.py")
	cmd := exec.Command(py, append([]string{script, "--out", tmp}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("export %s: %v\n%s", name, err, b)
	}
	if err := os.WriteFile(filepath.Join(tmp, stampFile), []byte(stamp), 0o644); err != nil {
		tb.Fatal(err)
	}
	// A copy made by older export code is moved aside first (a test
	// package still reading it keeps its open files).
	if _, err := os.Stat(out); err == nil {
		if stale, err := os.MkdirTemp(filepath.Dir(out), name+".stale"); err == nil {
			if os.Rename(out, filepath.Join(stale, name)) == nil {
				defer os.RemoveAll(stale)
			}
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		// Another test package may have put its export there meanwhile.
		if b, readErr := os.ReadFile(filepath.Join(out, stampFile)); readErr != nil || string(b) != stamp {
			tb.Fatalf("export %s: %v", name, err)
		}
	}
	return out
}

// stampFile, in an exported test model, names the export code it was made
// with (exportCodeStamp).
const stampFile = ".export-code"

// exportCodeStamp is a hash of model/python/*.py: a test model exported by
// other code (a changed decode step, say) is exported again rather than
// tested as if it were current.
func exportCodeStamp() (string, error) {
	files, err := filepath.Glob(filepath.Join(RepoRoot(), "model", "python", "*.py"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("no export code in model/python: %v", err)
	}
	h := sha256.New()
	for _, f := range files { // Glob sorts
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// modelsDir holds exported test models: $DIALOGBOT_TESTMODELS (a GPU machine
// gets them carried there, prebuilt) or build/testmodels.
func modelsDir() string {
	if d := os.Getenv("DIALOGBOT_TESTMODELS"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), "build", "testmodels")
}

// Device is where model tests run: $DIALOGBOT_TEST_DEVICE, default "cpu".
func Device() string {
	if d := os.Getenv("DIALOGBOT_TEST_DEVICE"); d != "" {
		return d
	}
	return "cpu"
}

// RequireBridge skips a test when libcbridge.so cannot be loaded (it finds
// bin/libcbridge.so of this checkout by itself), except where
// DIALOGBOT_REQUIRE_TORCH is set (make test, CI): there it fails.
func RequireBridge(tb testing.TB) {
	tb.Helper()
	if os.Getenv("DIALOGBOT_CBRIDGE") == "" {
		p := filepath.Join(RepoRoot(), "bin", "libcbridge.so")
		if _, err := os.Stat(p); err == nil {
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
