package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/internal/testfile"
)

// runCLI runs the CLI in-process and returns its exit code and stderr.
func runCLI(tb testing.TB, args ...string) (int, string) {
	tb.Helper()
	var out, errb bytes.Buffer
	code := runMain(context.Background(), args, stdio{in: strings.NewReader(""), out: &out, err: &errb})
	return code, errb.String()
}

// sharedPath is a file under $DIALOGBOT_SHARED (or ../shared); the test
// skips when the shared data is absent.
func sharedPath(tb testing.TB, rel string) string {
	tb.Helper()
	dir := os.Getenv("DIALOGBOT_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "shared")
	}
	p := filepath.Join(dir, rel)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("shared data not found (%v); set DIALOGBOT_SHARED", err)
	}
	return p
}

func TestDatasetUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no input", []string{"--tokenizer", "t.json", "--out", "o"}, "exactly one of --telegram"},
		{"two inputs", []string{"--telegram", "a", "--csv", "b", "--tokenizer", "t", "--out", "o"}, "exactly one of --telegram"},
		{"no tokenizer", []string{"--csv", "a.csv", "--out", "o"}, "--tokenizer and --out are required"},
		{"speaker with csv", []string{"--csv", "a.csv", "--tokenizer", "t", "--out", "o", "--speaker", "x"}, "need --telegram"},
		{"bad fraction", []string{"--csv", "a.csv", "--tokenizer", "t", "--out", "o", "--valid-fraction", "2"}, "--valid-fraction"},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runCLI(t, append([]string{"dataset"}, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

func TestDatasetSharedData(t *testing.T) {
	tok := sharedPath(t, "tokenizers/ru-tokenizer.json")
	tests := []struct {
		name, flag, file string
		minExamples      int
	}{
		{"english group export, older format", "--telegram", "data/telegram/english-group.json", 1000},
		{"small group export, newer format", "--telegram", "data/telegram/small-group.json", 1},
		{"dialogue csv", "--csv", "data/csv/english-group-context3.csv", 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			code, stderr := runCLI(t, "dataset", tc.flag, sharedPath(t, tc.file), "--tokenizer", tok, "--out", out)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var st struct {
				Examples      int `json:"examples"`
				TrainExamples int `json:"train_examples"`
				ValidExamples int `json:"valid_examples"`
			}
			testfile.ReadJSON(t, filepath.Join(out, "stats.json"), &st)
			if st.Examples < tc.minExamples || st.TrainExamples+st.ValidExamples != st.Examples {
				t.Errorf("stats %+v, want at least %d examples", st, tc.minExamples)
			}
			var meta struct {
				VocabSize     int `json:"vocab_size"`
				ContextLength int `json:"context_length"`
			}
			testfile.ReadJSON(t, filepath.Join(out, "meta.json"), &meta)
			if meta.VocabSize != 16000 || meta.ContextLength != 512 {
				t.Errorf("meta %+v", meta)
			}
		})
	}
}

func TestDatasetFixtures(t *testing.T) {
	tok := sharedPath(t, "tokenizers/ru-tokenizer.json")
	fixture := func(name string) string { return filepath.Join("model", "dataset", "testdata", name) }
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"truncated export", []string{"--telegram", fixture("truncated.json")}, 1, "truncated file at byte 437"},
		{"malformed export", []string{"--telegram", fixture("malformed.json")}, 1, "malformed JSON at byte"},
		{"truncated csv", []string{"--csv", fixture("truncated.csv")}, 1, "unterminated quoted cell"},
		{"channel: no dialogue", []string{"--telegram", fixture("channel.json")}, 1, "no training examples: no dialogue among 3 messages (a channel"},
		{"every sample too long", []string{"--telegram", fixture("account.json"), "--chat", "Mom", "--context", "8", "--max-new-tokens", "4"}, 1, "no training examples: all 1 dialogue samples were too long for the context"},
		{"unknown speaker", []string{"--telegram", fixture("account.json"), "--speaker", "Mum"}, 1, `--speaker "Mum" matches no sender (give a name or an id); senders by messages: "Me" (user1) 2, "Mom" (user10) 1`},
		{"speaker who never answers", []string{"--telegram", fixture("channel.json"), "--speaker", "News"}, 1, `"News" never answers anyone else`},
		{"bom json", []string{"--telegram", bomCopy(t, fixture("single_old.json"))}, 0, "examples"},
		{"bom csv, quoted header", []string{"--csv", bomCopy(t, fixture("dialogues.csv"))}, 0, "3 examples"},
		{"persian bot chat, 2020 export", []string{"--telegram", fixture("persian_bot_2020.json"), "--speaker", "ربات هواشناسی"}, 0, "5 examples"},
		{"excel csv: semicolons", []string{"--csv", fixture("excel.csv")}, 0, "2 examples"},
		{"chat not found", []string{"--telegram", fixture("account.json"), "--chat", "Dad"}, 1, `chat "Dad" not found`},
		{"one chat of an account", []string{"--telegram", fixture("account.json"), "--chat", "Mom", "--anonymize"}, 0, "1 examples"},
		{"missing file", []string{"--telegram", fixture("nope.json")}, 1, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"dataset", "--tokenizer", tok, "--out", t.TempDir()}, tc.args...)
			code, stderr := runCLI(t, args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.stderr)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") > 0 && tc.code != 0 {
				t.Errorf("want one line of error, got %q", stderr)
			}
		})
	}
}

// bomCopy is a copy of a fixture with a UTF-8 byte order mark in front, as
// Windows tools write it.
func bomCopy(tb testing.TB, path string) string {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(tb.TempDir(), "bom-"+filepath.Base(path))
	if err := os.WriteFile(out, append([]byte("\ufeff"), data...), 0o644); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestDatasetContextMatchesServing: with a model's metadata the examples are
// cut to serving's default context, not to the model's larger n_positions.
func TestDatasetContextMatchesServing(t *testing.T) {
	if got := config.Default().Model.MaxContext; got != defaultContext {
		t.Fatalf("serving's default max_context %d, dataset's %d", got, defaultContext)
	}
	meta := t.TempDir()
	b := `{"format_version":1,"architecture":"gpt2","n_layer":1,"n_head":1,"head_dim":1,"vocab_size":16000,"n_positions":2048,"prompt_format":"rudialogpt"}`
	if err := os.WriteFile(filepath.Join(meta, "dialogbot.json"), []byte(b), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := datasetFlags{modelMeta: meta}.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.Context != defaultContext {
		t.Errorf("context %d, want serving's %d", cfg.Limits.Context, defaultContext)
	}
}
