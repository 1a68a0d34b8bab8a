package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/internal/testmodel"
)

func TestTrainUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no model", []string{"--telegram", "a.json", "--out", "o"}, "--model and --out are required"},
		{"no input", []string{"--model", "m", "--out", "o"}, "exactly one of --telegram"},
		{"steps and epochs", []string{"--telegram", "a", "--model", "m", "--out", "o", "--steps", "3", "--epochs", "1"}, "not both"},
		{"bad device", []string{"--telegram", "a", "--model", "m", "--out", "o", "--device", "tpu"}, "--device"},
		{"bad progress", []string{"--telegram", "a", "--model", "m", "--out", "o", "--progress", "fancy"}, "--progress"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runCLI(t, append([]string{"train"}, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

func TestTrainModelWithoutTokenizer(t *testing.T) {
	code, stderr := runCLI(t, "train", "--telegram", "x.json", "--model", t.TempDir(), "--out", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "a Hugging Face GPT-2 directory with tokenizer.json") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// requirePython skips without a Python that imports torch (fails under make test).
func requirePython(t *testing.T) {
	t.Helper()
	if _, err := testmodel.Python(); err != nil {
		if os.Getenv("DIALOGBOT_REQUIRE_TORCH") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// TestTrainEndToEnd runs the real finetune.py and export.py on tiny-gpt2:
// the model it leaves answers in chat, and a second run does nothing again.
func TestTrainEndToEnd(t *testing.T) {
	export := sharedPath(t, "data/telegram/english-group.json")
	model := filepath.Join(testmodel.SharedDir(t), "models", "tiny-gpt2")
	requirePython(t)
	testmodel.RequireBridge(t)
	out := filepath.Join(t.TempDir(), "model")
	args := []string{"train", "--telegram", export, "--model", model, "--out", out, "--steps", "2", "--device", "cpu", "--max-new-tokens", "16"}
	code, stdout, stderr := runWithInput(t, "", args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "held-out reply perplexity") || !strings.Contains(stderr, "[2/3] training: 100%") {
		t.Errorf("stdout %q\nstderr %q", stdout, stderr)
	}
	code, reply, errOut := runWithInput(t, "hello\n", "chat", "--model", out, "--device", "cpu", "--seed", "1")
	if code != 0 || strings.Count(reply, "\n") != 1 {
		t.Fatalf("chat on the trained model: exit %d, %q, %s", code, reply, errOut)
	}
	code, _, stderr = runWithInput(t, "", args...)
	if code != 0 || strings.Count(stderr, "done before, kept") != 3 {
		t.Errorf("second run: exit %d, stderr %q; want every stage kept", code, stderr)
	}
}

// TestTrainPersianBotChat: a 2020 export (older format) of a bot chat in
// Persian trains on the 64-token tiny model (one reply is short enough), and
// is refused with one clear line when no reply fits; never a traceback.
func TestTrainPersianBotChat(t *testing.T) {
	model := filepath.Join(testmodel.SharedDir(t), "models", "tiny-gpt2")
	requirePython(t)
	export := filepath.Join("model", "dataset", "testdata", "persian_bot_2020.json")
	train := func(extra ...string) (string, int, string) {
		out := filepath.Join(t.TempDir(), "m")
		args := append([]string{"train", "--telegram", export, "--speaker", "ربات هواشناسی", "--model", model,
			"--out", out, "--steps", "1", "--device", "cpu"}, extra...)
		code, _, stderr := runWithInput(t, "", args...)
		if strings.Contains(stderr, "Traceback") {
			t.Errorf("a traceback: %s", stderr)
		}
		return out, code, stderr
	}
	out, code, stderr := train()
	if _, err := os.Stat(filepath.Join(out, "dialogbot.json")); code != 0 || err != nil {
		t.Errorf("exit %d (%v), stderr %q", code, err, stderr)
	}
	_, code, stderr = train("--max-new-tokens", "60")
	if code != 1 || !strings.Contains(stderr, "no training examples: all 5 dialogue samples were too long for the context") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
