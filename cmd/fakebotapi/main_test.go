package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/internal/telegramtest"
)

// start runs the command in-process and returns its printed addresses.
func start(t *testing.T) (api, ctl string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, pw, io.Discard); pw.Close() }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	lines := map[string]string{}
	sc := bufio.NewScanner(pr)
	for len(lines) < 3 && sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		lines[k] = v
	}
	go io.Copy(io.Discard, pr) //nolint:errcheck // drain until the pipe closes
	if lines["token"] != telegramtest.Token || lines["api_url"] == "" || lines["control_url"] == "" {
		t.Fatalf("printed %v", lines)
	}
	return lines["api_url"], lines["control_url"]
}

// post sends a JSON body and decodes the JSON answer into out (when not nil).
func post(t *testing.T, url, body string, out any) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func get(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func method(api, name string) string { return api + "/bot" + telegramtest.Token + "/" + name }

func TestMessageQueuedForGetUpdatesWithoutWebhook(t *testing.T) {
	api, ctl := start(t)
	var ack map[string]any
	if code := post(t, ctl+"/message", `{"chat_id": 42, "text": "привет"}`, &ack); code != 200 || ack["delivered"] != "getUpdates" {
		t.Fatalf("POST /message = %d %v", code, ack)
	}
	var upd struct {
		Result []struct {
			Message struct {
				Text string
				Chat struct{ ID int64 }
			}
		}
	}
	post(t, method(api, "getUpdates"), `{"timeout": 0}`, &upd)
	if len(upd.Result) != 1 || upd.Result[0].Message.Text != "привет" || upd.Result[0].Message.Chat.ID != 42 {
		t.Fatalf("getUpdates = %+v", upd)
	}
}

func TestMessagePostedToWebhookWithSecret(t *testing.T) {
	api, ctl := start(t)
	got := make(chan [2]string, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var u struct{ Message struct{ Text string } }
		_ = json.NewDecoder(r.Body).Decode(&u)
		got <- [2]string{u.Message.Text, r.Header.Get("X-Telegram-Bot-Api-Secret-Token")}
	}))
	defer hook.Close()
	post(t, method(api, "setWebhook"), `{"url": "`+hook.URL+`/telegram", "secret_token": "s3cret"}`, nil)
	var ack map[string]any
	if code := post(t, ctl+"/message", `{"chat_id": 7, "text": "hi"}`, &ack); code != 200 || ack["delivered"] != "webhook" {
		t.Fatalf("POST /message = %d %v", code, ack)
	}
	if g := <-got; g != [2]string{"hi", "s3cret"} {
		t.Fatalf("webhook got text, secret = %q", g)
	}
}

func TestWebhookOffLoopbackIsRefused(t *testing.T) {
	api, ctl := start(t)
	post(t, method(api, "setWebhook"), `{"url": "http://192.0.2.1/telegram", "secret_token": "s"}`, nil)
	if code := post(t, ctl+"/message", `{"chat_id": 7, "text": "hi"}`, nil); code != http.StatusBadGateway {
		t.Fatalf("POST /message with an off-loopback webhook = %d, want 502", code)
	}
}

func TestSentAndErrorsAreReported(t *testing.T) {
	api, ctl := start(t)
	post(t, method(api, "sendMessage"), `{"chat_id": 5, "text": "answer"}`, nil)
	var sent []telegramtest.Sent
	get(t, ctl+"/sent?chat_id=5", &sent)
	if len(sent) != 1 || sent[0].Text != "answer" {
		t.Fatalf("/sent = %+v", sent)
	}
	var errs []string
	get(t, ctl+"/errors", &errs)
	if len(errs) != 0 {
		t.Fatalf("/errors before a bad call = %v", errs)
	}
	post(t, method(api, "noSuchMethod"), `{}`, nil)
	get(t, ctl+"/errors", &errs)
	if len(errs) != 1 || !strings.Contains(errs[0], "noSuchMethod") {
		t.Fatalf("/errors after a bad call = %v", errs)
	}
}

func TestBadRequestsAreRefused(t *testing.T) {
	_, ctl := start(t)
	for _, body := range []string{`{"text": "no chat"}`, `{"chat_id": 1}`, `not json`} {
		if code := post(t, ctl+"/message", body, nil); code != http.StatusBadRequest {
			t.Errorf("POST /message %s = %d, want 400", body, code)
		}
	}
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:80", "nonsense"} {
		if err := checkLoopback(addr); err == nil {
			t.Errorf("checkLoopback(%q) = nil, want an error", addr)
		}
	}
}
