package main

import (
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/internal/telegramtest"
	"github.com/dialogbot/dialogbot/internal/testmodel"
)

// TestServeHealthAndMetrics: with the model loaded and getMe held by the
// fake Bot API, /healthz says 503; once getMe is answered and two messages
// answered, it says 200 and /metrics shows the counters moved.
func TestServeHealthAndMetrics(t *testing.T) {
	testmodel.RequireBridge(t)
	dir := testmodel.Export(t, "tiny-gpt2")
	t.Setenv(config.TokenEnv, telegramtest.Token)
	api := telegramtest.New(t)
	getMe := api.Hold("getMe")
	log := serveLog(t)
	startServe(t, serveConfig(t, api.URL, dir, filepath.Join(t.TempDir(), "bot.db"), serveSeed), log)
	select {
	case <-getMe.Arrived(): // the model is loaded before the bot calls getMe
	case <-time.After(2 * time.Minute):
		t.Fatal("serve did not call getMe within 2 minutes")
	}
	ops := opsAddr(t, log.String())
	if code, body := httpGet(t, ops, "/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "getMe") {
		t.Errorf("/healthz before getMe was answered: %d %q, want 503 waiting for getMe", code, body)
	}
	if m := scrape(t, ops); m["dialogbot_ready"] != 0 || m["dialogbot_updates_received_total"] != 0 {
		t.Errorf("metrics before start: ready %v, received %v; want 0, 0", m["dialogbot_ready"], m["dialogbot_updates_received_total"])
	}
	getMe.Open()
	// A chat's updates are handled one after another: once the second
	// reply is out, the first one's send was counted (a reply is counted
	// when Telegram's answer is back, after the fake API recorded it).
	api.Push(privateMsg(42, "привет"), privateMsg(42, "как дела?"))
	api.WaitSent(t, 42, 2)
	if code, body := httpGet(t, ops, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after a reply: %d %q, want 200", code, body)
	}
	m := scrape(t, ops)
	for _, name := range []string{"dialogbot_ready", "dialogbot_updates_received_total", "dialogbot_replies_sent_total",
		"dialogbot_generation_seconds_count", "dialogbot_generated_tokens_total", "dialogbot_prompt_tokens_total"} {
		if !(m[name] > 0) {
			t.Errorf("%s = %v after a reply, want above 0", name, m[name])
		}
	}
	if _, ok := m[`dialogbot_inbox_updates{state="waiting"}`]; !ok {
		t.Errorf("no inbox depth in /metrics")
	}
}

// opsAddr is the address serve logged for its operations endpoints.
func opsAddr(t *testing.T, log string) string {
	t.Helper()
	m := regexp.MustCompile(`msg="operations endpoints listening" addr=(\S+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("serve did not log its operations address")
	}
	return m[1]
}

func httpGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// scrape reads /metrics into name{labels} -> value (comments left out).
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	code, body := httpGet(t, addr, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	return parseMetrics(body)
}

func parseMetrics(body string) map[string]float64 {
	m := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil && i > 0 {
			m[line[:i]] = v
		}
	}
	return m
}
