package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/internal/telegramtest"
	"github.com/dialogbot/dialogbot/internal/testmodel"
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
