package dataset

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestReadTelegramMessages(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		opt     TelegramOptions
		want    []string
		skipped map[string]int
	}{
		{
			name:    "newer format defaults: service, forwarded and bare photo skipped, sticker as emoji, caption kept",
			fixture: "single_new.json",
			want: []string{"Привет всем!", "Привет, Аня", "как дела?", "😀", "Отлично! Пиши на anya@example.com или звони +7 999 123-45-67",
				"Смотрите, какой закат https://example.org/sunset", "Новый день", "Хорошо, спасибо", "А ты?"},
			skipped: map[string]int{"service": 1, "forwarded": 1, "media": 1},
		},
		{
			name:    "forwarded kept, media as placeholder, anonymized",
			fixture: "single_new.json",
			opt:     TelegramOptions{KeepForwarded: true, Media: MediaPlaceholder, Anonymize: true},
			want: []string{"Привет всем!", "Привет, Аня", "как дела?", "😀", "Отлично! Пиши на [email] или звони [phone]",
				"Срочная новость", "[photo]", "Смотрите, какой закат [link]", "Новый день", "Хорошо, спасибо", "А ты?"},
			skipped: map[string]int{"service": 1},
		},
		{
			name:    "older format: text as a list of strings and entities",
			fixture: "single_old.json",
			want:    []string{"Hello Maria!", "Ivan, hi! See this", "who is there?"},
		},
		{
			name:    "channel",
			fixture: "channel.json",
			want:    []string{"Первая новость", "Вторая новость", "Завтрашняя новость"},
			skipped: map[string]int{"service": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chats, st := readChats(t, tc.fixture, tc.opt)
			if len(chats) != 1 {
				t.Fatalf("got %d chats, want 1", len(chats))
			}
			if got := texts(chats[0].Messages); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("texts:\n got %q\nwant %q", got, tc.want)
			}
			if st.Messages != len(tc.want) || !reflect.DeepEqual(st.Skipped, tc.skipped) {
				t.Errorf("stats %+v, want %d messages, skipped %v", st, len(tc.want), tc.skipped)
			}
		})
	}
}

func TestReadTelegramFields(t *testing.T) {
	chats, _ := readChats(t, "single_old.json", TelegramOptions{})
	c := chats[0]
	if c.Name != "Maria" || c.ID != 222 || c.Type != "personal_chat" {
		t.Errorf("chat %q %d %q", c.Name, c.ID, c.Type)
	}
	m := c.Messages[1]
	if m.SenderID != "222" || m.Sender != "Maria" || m.ReplyTo != 1 || m.Time.Format("2006-01-02 15:04:05") != "2021-03-01 10:01:00" {
		t.Errorf("older-format message: %+v", m)
	}
	if deleted := c.Messages[2]; deleted.Sender != "" || deleted.senderKey() != "333" {
		t.Errorf("deleted account: %+v", deleted)
	}
	chats, _ = readChats(t, "single_new.json", TelegramOptions{})
	if m := chats[0].Messages[0]; m.SenderID != "user1" || m.Time.Unix() != 1700000000 {
		t.Errorf("newer-format message: %+v", m)
	}
}

func TestReadTelegramAccount(t *testing.T) {
	tests := []struct {
		name  string
		chat  string
		names []string
	}{
		{"all chats, left ones too", "", []string{"Mom", "News", "Old group"}},
		{"by name", "mom", []string{"Mom"}},
		{"by id, name after messages", "20", []string{"News"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chats, st := readChats(t, "account.json", TelegramOptions{Chat: tc.chat})
			var names []string
			for _, c := range chats {
				names = append(names, c.Name)
			}
			if !reflect.DeepEqual(names, tc.names) || st.Chats != len(tc.names) {
				t.Errorf("chats %q (stats %d), want %q", names, st.Chats, tc.names)
			}
		})
	}
}

func TestReadTelegramChatNotFound(t *testing.T) {
	_, err := ReadTelegram(openFixture(t, "account.json"), TelegramOptions{Chat: "Dad"}, func(Chat) error { return nil })
	if err == nil || !strings.Contains(err.Error(), `"Dad" not found`) || !strings.Contains(err.Error(), `"Old group" (30)`) {
		t.Errorf("got %v, want a not-found error listing the chats", err)
	}
}

func TestReadTelegramBadInput(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		what   string
		offset int64
	}{
		{"missing comma", `{"messages": [{"id": 1} {"id": 2}]}`, "malformed JSON", 24},
		{"truncated inside a message", `{"messages": [{"id": 1, "text": "abc`, "truncated file", 36},
		{"truncated between messages", `{"messages": [{"id": 1, "type": "service"},`, "truncated file", 43},
		{"truncated after messages", `{"messages": []`, "truncated file", 15},
		{"not an object", `[1, 2]`, "not a Telegram export (want a JSON object)", 0},
		{"wrong type for id", `{"messages": [{"id": "x"}]}`, "unexpected JSON value", 24},
		{"text not a string or list", `{"messages": [{"id": 1, "type": "message", "text": 5}]}`, "unexpected JSON value", 14},
		{"bad date", `{"messages": [{"id": 7, "type": "message", "date": "yesterday", "text": "hi"}]}`, "message 7", 14},
		{"garbage after the export", `{"messages": []} x`, "malformed JSON", 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadTelegram(strings.NewReader(tc.input), TelegramOptions{}, func(Chat) error { return nil })
			var pe *PositionError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a PositionError", err)
			}
			if pe.What != tc.what || pe.Offset != tc.offset {
				t.Errorf("got %q at %d (%v), want %q at %d", pe.What, pe.Offset, err, tc.what, tc.offset)
			}
			if !strings.Contains(err.Error(), "at byte") {
				t.Errorf("message %q does not say where", err)
			}
		})
	}
}

func TestReadTelegramFixtureErrors(t *testing.T) {
	tests := []struct {
		fixture string
		what    string
		unwraps error
	}{
		{"truncated.json", "truncated file", io.ErrUnexpectedEOF},
		{"malformed.json", "malformed JSON", nil},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			_, err := ReadTelegram(openFixture(t, tc.fixture), TelegramOptions{}, func(Chat) error { return nil })
			var pe *PositionError
			if !errors.As(err, &pe) || pe.What != tc.what || pe.Offset <= 0 {
				t.Fatalf("got %v, want %q with an offset", err, tc.what)
			}
			if tc.unwraps != nil && !errors.Is(err, tc.unwraps) {
				t.Errorf("%v does not unwrap to %v", err, tc.unwraps)
			}
		})
	}
}

func TestReadTelegramNoMessages(t *testing.T) {
	_, err := ReadTelegram(strings.NewReader(`{"about": "x"}`), TelegramOptions{}, func(Chat) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "not a Telegram Desktop export") {
		t.Errorf("got %v", err)
	}
}

func TestReadTelegramCallbackError(t *testing.T) {
	stop := errors.New("stop")
	_, err := ReadTelegram(openFixture(t, "account.json"), TelegramOptions{}, func(Chat) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("got %v, want the callback's error", err)
	}
}
