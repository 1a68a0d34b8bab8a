package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/dialogbot/dialogbot/bot"
	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/internal/fakemodel"
	"github.com/dialogbot/dialogbot/internal/loader"
	"github.com/dialogbot/dialogbot/internal/telegramtest"
	"github.com/dialogbot/dialogbot/internal/testmodel"
	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/engine"
	"github.com/dialogbot/dialogbot/model/tokenizer"
)

// chatLines are a private chat's messages, one after another.
var chatLines = []string{
	"привет", "как дела?", "что делаешь?", "готовишься к шаду?", "а какие темы сложнее всего?",
	"теорвер или алгоритмы?", "я вчера решал задачи по динамике", "получилось не всё", "ты когда сдаёшь?",
	"понятно", "а книги какие посоветуешь?", "спасибо!", "ладно, пойду заниматься", "пока",
	"ещё вопрос", "сколько задач в контесте?", "а времени сколько?", "ок", "удачи", "до завтра",
}

// TestServeDefaultsReusePrompts runs serve with nothing but the token, the
// API, the model and the store set (every other key at its shipped default)
// on nano-ru, a trained dialogue model, through a 14-message private chat,
// and reads the engine's stats line at shutdown: at least half of the
// prompt tokens must have come from the chat's cached prompt. Each layer is
// tested alone elsewhere; this one catches two layers that both cut the
// conversation window.
func TestServeDefaultsReusePrompts(t *testing.T) {
	testmodel.RequireBridge(t)
	dir := testmodel.Export(t, "nano-ru")
	t.Setenv(config.TokenEnv, telegramtest.Token)
	api := telegramtest.New(t)
	log := serveLog(t)
	cfg := writeConfig(t, fmt.Sprintf("[telegram]\napi_url = %q\n[model]\npath = %q\n[storage]\npath = %q\n",
		api.URL, dir, filepath.Join(t.TempDir(), "bot.db")))
	s := startServe(t, cfg, log)
	api.Push(privateMsg(42, "/start"))
	api.WaitSent(t, 42, 1)
	const messages = 14
	for i, line := range chatLines[:messages] {
		api.Push(privateMsg(42, line))
		api.WaitSent(t, 42, i+2) // the greeting, then one reply per message
	}
	s.stop(t)
	prompt, reused := engineStatsLine(t, log.String())
	share := float64(reused) / float64(prompt)
	t.Logf("%d messages: %d of %d prompt tokens reused (%.0f%%)", messages, reused, prompt, 100*share)
	if share < 0.5 {
		t.Errorf("%d of %d prompt tokens reused (%.0f%%), want at least 50%%", reused, prompt, 100*share)
	}
}

var engineStatsPattern = regexp.MustCompile(`msg="engine stats".* prompt_tokens=(\d+) reused_prompt_tokens=(\d+)`)

// engineStatsLine reads the prompt and reused token counts of serve's
// "engine stats" log line.
func engineStatsLine(tb testing.TB, log string) (prompt, reused int) {
	tb.Helper()
	m := engineStatsPattern.FindStringSubmatch(log)
	if m == nil {
		tb.Fatalf("no engine stats line in serve's log")
	}
	prompt, _ = strconv.Atoi(m[1])
	reused, _ = strconv.Atoi(m[2])
	if prompt == 0 {
		tb.Fatalf("the engine stats line counts no prompt tokens: %s", m[0])
	}
	return prompt, reused
}

// TestDefaultConfigWiredToAFakeModelReusesPrompts builds what serve builds
// from the shipped default config (bot, store, generator, engine), on a
// fake model instead of libtorch so that it runs everywhere, and checks the
// share of prompt tokens the engine found cached over a 20-message chat.
func TestDefaultConfigWiredToAFakeModelReusesPrompts(t *testing.T) {
	cfg := config.Default()
	api := telegramtest.New(t)
	cfg.Telegram.Token, cfg.Telegram.APIURL = telegramtest.Token, api.URL
	cfg.Storage.Path = filepath.Join(t.TempDir(), "bot.db")
	log := slog.New(slog.NewTextHandler(serveLog(t), nil))

	tok, err := tokenizer.LoadTokenizer(filepath.Join("model", "tokenizer", "testdata", "tokenizer", "tiny.json"))
	if err != nil {
		t.Fatal(err)
	}
	fm := fakemodel.New(57, cfg.Model.Slots, cfg.Model.MaxContext)
	fm.Shape = shortReplies(tok)
	eng := engine.NewEngine(fm, loader.EngineOptions(config.DeviceCPU))
	defer eng.Close()
	// The tiny tokenizer has <|endoftext|> but not ruDialoGPT's tags, so the
	// prompts are in DialoGPT's format; the window is the same.
	gen, err := loader.NewGenerator(eng, tok, dialog.FormatDialoGPT, fm.Capacity(), cfg.Generation, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bot.New(botOptions(cfg), loader.ReplierFor(gen, cfg.Generation, log), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()

	lines := []string{"ok", "abc?", "sos 12!", "a b c", "ok ok", "cab?", "12 21", "so", "oka!", "bob",
		"kick", "abba?", "sack 1", "ok!", "coco", "boss?", "cask", "22!", "ask", "bye? ok"}
	for i, line := range lines {
		api.Push(privateMsg(42, line))
		api.WaitSent(t, 42, i+1)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("bot: %v", err)
	}
	st := eng.Stats()
	share := float64(st.ReusedTokens) / float64(st.PromptTokens)
	t.Logf("%d messages: %d of %d prompt tokens reused (%.0f%%)", len(lines), st.ReusedTokens, st.PromptTokens, 100*share)
	if share < 0.5 {
		t.Errorf("%d of %d prompt tokens reused (%.0f%%), want at least 50%%", st.ReusedTokens, st.PromptTokens, 100*share)
	}
}

// shortReplies shapes the fake model's logits like a dialogue model's: only
// tokens that decode to text, and the end of the reply about as likely as
// the best of them, so replies run a few tokens.
func shortReplies(tok *tokenizer.Tokenizer) func([]float32) {
	eos, _ := tok.TokenID(dialog.EOS)
	return func(logits []float32) {
		best := float32(-1e9)
		for id := range logits {
			if id != eos && tok.Decode([]int{id}) == "" {
				logits[id] = -100
			}
			best = max(best, logits[id])
		}
		logits[eos] = best
	}
}
