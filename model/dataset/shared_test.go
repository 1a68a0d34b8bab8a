package dataset

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestProgressReader(t *testing.T) {
	var reports []int64
	pr := &ProgressReader{R: strings.NewReader(strings.Repeat("x", 25)), Step: 10, Report: func(n int64) { reports = append(reports, n) }}
	buf := make([]byte, 4)
	for {
		if _, err := pr.Read(buf); err == io.EOF {
			break
		}
	}
	if want := []int64{12, 20}; !reflect.DeepEqual(reports, want) {
		t.Errorf("reports %v, want %v", reports, want)
	}
}

// TestSharedEnglishGroup reads the real export: every message is either kept
// or skipped for a reason, and the replies become samples.
func TestSharedEnglishGroup(t *testing.T) {
	path := filepath.Join(sharedDir(t), "data", "telegram", "english-group.json")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var samples []Sample
	st, err := ReadTelegram(f, TelegramOptions{}, func(c Chat) error {
		samples, _ = Samples(c.Messages, DialogueOptions{Gap: 30 * time.Minute, MaxTurns: 6}, 0, func(string) {})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	total := st.Messages
	for _, n := range st.Skipped {
		total += n
	}
	// SOURCES.md: 1,902 messages, 77 of them service messages.
	if total != 1902 || st.Skipped["service"] != 77 || len(samples) < 1000 {
		t.Errorf("read %+v (total %d), %d samples", st, total, len(samples))
	}
}

func BenchmarkReadTelegram(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(sharedDir(b), "data", "telegram", "english-group.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ReadTelegram(bytes.NewReader(data), TelegramOptions{}, func(Chat) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
