package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/tokenizer"

	"github.com/dialogbot/dialogbot/internal/testmodel"
)

// TestChatGreedyGivesGoldenReplies: the five nano-ru golden prompts, each
// after /reset, through tokenizer, prompt format, engine and bridge, give
// exactly Hugging Face's greedy replies.
func TestChatGreedyGivesGoldenReplies(t *testing.T) {
	testmodel.RequireBridge(t)
	dir := testmodel.Export(t, "nano-ru")
	var golden struct {
		Cases []struct {
			PromptIDs []int `json:"prompt_ids"`
			GreedyIDs []int `json:"greedy_ids"`
		} `json:"cases"`
	}
	b, err := os.ReadFile(filepath.Join(testmodel.SharedDir(t), "models", "nano-ru", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadTokenizer(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var input strings.Builder
	var want []string
	for _, c := range golden.Cases {
		text := tok.Decode(c.PromptIDs)
		text = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(text, dialog.TagFirst), dialog.TagSecond))
		input.WriteString("/reset\n" + text + "\n")
		reply := c.GreedyIDs
		for i, id := range reply {
			if id <= 2 { // <|endoftext|>, @@ПЕРВЫЙ@@, @@ВТОРОЙ@@ end a reply
				reply = reply[:i]
				break
			}
		}
		want = append(want, tok.DecodeReply(reply))
	}
	code, out, errOut := runWithInput(t, input.String(), "chat", "--model", dir, "--greedy", "--device", "cpu")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("%d reply lines, want %d:\n%s", len(got), len(want), out)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("reply %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// TestChatKeepsHistoryAndOneLinePerInput checks the scripting contract on
// a random model: one line per message, none for /reset, and a history
// that changes the prompt (so the same message can get another reply).
func TestChatKeepsHistoryAndOneLinePerInput(t *testing.T) {
	testmodel.RequireBridge(t)
	dir := testmodel.Export(t, "tiny-gpt2")
	code, out, errOut := runWithInput(t, "привет\nкак дела?\n/reset\n\nпривет\n", "chat", "--model", dir, "--seed", "7", "--device", "cpu")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines for 4 messages (and one /reset):\n%q", len(lines), out)
	}
	if lines[2] != "" {
		t.Errorf("empty input got reply %q", lines[2])
	}
	if !strings.Contains(errOut, " ms, ") {
		t.Errorf("no latency on stderr: %q", errOut)
	}
}

func TestChatErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing model", []string{"chat", "--model", filepath.Join(t.TempDir(), "none")}, "no exported model"},
		{"bad flag", []string{"chat", "--nope"}, "flag provided but not defined"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runWithInput(t, "", c.args...)
			if code == 0 || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stderr %q; want failure mentioning %q", code, errOut, c.want)
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\nb\r\nc"); got != `a\nb\nc` {
		t.Errorf("oneLine = %q", got)
	}
}

// TestChatPromptFormatOverride: model.prompt_format replaces the format in
// dialogbot.json, so the same message gets a prompt of another shape.
func TestChatPromptFormatOverride(t *testing.T) {
	testmodel.RequireBridge(t)
	dir := testmodel.Export(t, "nano-ru")
	cfg := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(cfg, []byte("[model]\nprompt_format = \"dialogpt\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	input := "Сколько будет дважды два?\n"
	_, own, _ := runWithInput(t, input, "chat", "--model", dir, "--greedy", "--device", "cpu")
	code, other, errOut := runWithInput(t, input, "chat", "--model", dir, "--greedy", "--device", "cpu", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if own != "Четыре!\n" || other == own {
		t.Errorf("rudialogpt reply %q, dialogpt reply %q: want the golden one, then another", own, other)
	}
}
