package dataset

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/model/dialog"
)

// runeEncoder is a fake tokenizer: the special tokens get ids 0..2 and every
// other rune one id (3 + its code point), so token counts are easy to reason about.
type runeEncoder struct{}

func (runeEncoder) Encode(text string) []int { return encodeRunes(text, true) }

// EncodeText is Encode without the special tokens, as the real tokenizer's.
func (runeEncoder) EncodeText(text string) []int { return encodeRunes(text, false) }

func encodeRunes(text string, specials bool) []int {
	var ids []int
	for text != "" {
		if id, n := special(text); specials && n > 0 {
			ids = append(ids, id)
			text = text[n:]
			continue
		}
		r := []rune(text)[0]
		ids = append(ids, 3+int(r))
		text = text[len(string(r)):]
	}
	return ids
}

func special(s string) (int, int) {
	for id, tag := range []string{dialog.EOS, dialog.TagFirst, dialog.TagSecond} {
		if strings.HasPrefix(s, tag) {
			return id, len(tag)
		}
	}
	return 0, 0
}

func openFixture(tb testing.TB, name string) *os.File {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// readChats reads a Telegram fixture and returns its selected chats.
func readChats(tb testing.TB, name string, opt TelegramOptions) ([]Chat, ReadStats) {
	tb.Helper()
	var chats []Chat
	st, err := ReadTelegram(openFixture(tb, name), opt, func(c Chat) error {
		chats = append(chats, c)
		return nil
	})
	if err != nil {
		tb.Fatalf("ReadTelegram(%s): %v", name, err)
	}
	return chats, st
}

func texts(msgs []Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Text
	}
	return out
}

// sharedDir is ../shared (or $DIALOGBOT_SHARED); tests that need it skip without it.
func sharedDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("DIALOGBOT_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared")
	}
	if _, err := os.Stat(dir); err != nil {
		tb.Skipf("shared data not found at %s (set DIALOGBOT_SHARED): %v", dir, err)
	}
	return dir
}
