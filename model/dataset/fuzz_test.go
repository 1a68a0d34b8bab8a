package dataset

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadTelegram: whatever the bytes, reading an export returns chats or
// a clear error (with the byte position when the JSON itself is bad), and
// never panics. The seeds are the fixtures;
// `go test -fuzz FuzzReadTelegram ./model/dataset` explores further.
func FuzzReadTelegram(f *testing.F) {
	for _, name := range []string{"account.json", "channel.json", "malformed.json", "single_new.json", "single_old.json", "truncated.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"messages": [{"id": 1, "type": "message", "text": 5}]}`))
	f.Add([]byte(`{"chats": {"list": {}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ReadTelegram(bytes.NewReader(data), TelegramOptions{}, func(Chat) error { return nil })
		var pe *PositionError
		if errors.As(err, &pe) && !strings.Contains(err.Error(), "byte") {
			t.Errorf("position error that does not say where: %v", err)
		}
	})
}

// FuzzReadCSV: a dialogue CSV of any content gives samples or an error,
// never a panic.
func FuzzReadCSV(f *testing.F) {
	for _, name := range []string{"dialogues.csv", "reordered.csv", "truncated.csv"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = ReadCSV(bytes.NewReader(data), RolesAlternate, false, func(string) {})
	})
}
