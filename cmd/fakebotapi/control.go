package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/mymmrac/telego"

	"github.com/dialogbot/dialogbot/internal/telegramtest"
)

// control is the test's side of the fake Bot API:
//
//	POST /message {"chat_id": N, "user_id": N, "text": "..."}
//	     a user's message to the bot: posted to the bot's webhook (with its
//	     secret) once the bot has set one, as Telegram does, else queued for
//	     getUpdates. user_id defaults to chat_id; a negative chat is a group.
//	GET  /sent[?chat_id=N]  what the bot sent (all chats without chat_id)
//	GET  /webhook           the bot's webhook url and secret_token, or null
//	GET  /errors            calls the fake could not answer
type control struct {
	api    *telegramtest.Server
	tb     *logTB
	client *http.Client

	mu       sync.Mutex
	nextMsg  int
	nextUpdt int
}

func newControl(api *telegramtest.Server, tb *logTB) *control {
	return &control{api: api, tb: tb, client: &http.Client{Timeout: 30 * time.Second}, nextMsg: 1, nextUpdt: 1}
}

func (c *control) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /message", c.message)
	mux.HandleFunc("GET /sent", c.sent)
	mux.HandleFunc("GET /webhook", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, c.api.Webhook()) })
	mux.HandleFunc("GET /errors", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, c.tb.errors()) })
	return mux
}

type messageRequest struct {
	ChatID int64  `json:"chat_id"`
	UserID int64  `json:"user_id"`
	Text   string `json:"text"`
}

func (c *control) message(w http.ResponseWriter, r *http.Request) {
	var req messageRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ChatID == 0 || req.Text == "" {
		http.Error(w, "want a JSON body with chat_id (not 0) and text (not empty)", http.StatusBadRequest)
		return
	}
	msg := c.newMessage(req)
	hook := c.api.Webhook()
	if hook == nil || hook["url"] == "" {
		c.api.Push(msg)
		writeJSON(w, map[string]any{"message_id": msg.MessageID, "delivered": "getUpdates"})
		return
	}
	if err := c.deliver(hook["url"], hook["secret_token"], msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	writeJSON(w, map[string]any{"message_id": msg.MessageID, "delivered": "webhook"})
}

func (c *control) newMessage(req messageRequest) *telego.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	user, kind := req.UserID, "private"
	if user == 0 {
		user = req.ChatID
	}
	if req.ChatID < 0 {
		kind = "group"
	}
	m := &telego.Message{
		MessageID: c.nextMsg, Date: time.Now().Unix(), Text: req.Text,
		Chat: telego.Chat{ID: req.ChatID, Type: kind},
		From: &telego.User{ID: user, FirstName: "User" + strconv.FormatInt(user, 10)},
	}
	c.nextMsg++
	return m
}

// deliver posts msg as an update to the bot's webhook, as Telegram does.
func (c *control) deliver(hook, secret string, msg *telego.Message) error {
	if err := checkLoopbackURL(hook); err != nil {
		return err
	}
	c.mu.Lock()
	u := telego.Update{UpdateID: c.nextUpdt, Message: msg}
	c.nextUpdt++
	c.mu.Unlock()
	body, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encode update: %w", err)
	}
	req, err := http.NewRequest(http.MethodPost, hook, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(telego.WebhookSecretTokenHeader, secret)
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("post to webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook %s answered %s", hook, resp.Status)
	}
	return nil
}

// checkLoopbackURL refuses a webhook that is not on the loopback interface.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("webhook url: %w", err)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("webhook %s is not on the loopback interface; this fake posts nowhere else", raw)
	}
	return nil
}

func (c *control) sent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("chat_id")
	if q == "" {
		writeJSON(w, orEmpty(c.api.AllSent()))
		return
	}
	id, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		http.Error(w, "chat_id: "+err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, orEmpty(c.api.SentTo(id)))
}

// orEmpty makes "nothing sent" [] in JSON rather than null.
func orEmpty(s []telegramtest.Sent) []telegramtest.Sent {
	if s == nil {
		return []telegramtest.Sent{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
