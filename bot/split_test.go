package bot

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplitMessage(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		limit int
		want  []string
	}{
		{"short", "hello world", 20, []string{"hello world"}},
		{"trimmed", "  hi \n", 20, []string{"hi"}},
		{"empty", "   ", 20, nil},
		{"exactly the limit", "abcde", 5, []string{"abcde"}},
		{"paragraphs first", "aaa bbb\n\nccc ddd", 12, []string{"aaa bbb", "ccc ddd"}},
		{"then lines", "aaa bbb\nccc ddd", 12, []string{"aaa bbb", "ccc ddd"}},
		{"then spaces", "aaa bbb ccc", 8, []string{"aaa bbb", "ccc"}},
		{"then inside a word", "abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"cyrillic counts one unit a letter", "привет мир", 6, []string{"привет", "мир"}},
		{"emoji counts two units", "😀😀😀", 4, []string{"😀😀", "😀"}},
		{"emoji never cut in half", "a😀", 2, []string{"a", "😀"}},
		{"limit below one rune", "😀😀", 1, []string{"😀", "😀"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := splitMessage(tc.text, tc.limit)
			if !slices.Equal(got, tc.want) {
				t.Errorf("splitMessage(%q, %d) = %q, want %q", tc.text, tc.limit, got, tc.want)
			}
		})
	}
}

func TestSplitMessageTelegramLimit(t *testing.T) {
	text := strings.Repeat("😀", 3000) // 6,000 units in 3,000 runes
	parts := splitMessage(text, MaxMessageLen)
	if len(parts) != 2 || utf16Len(parts[0]) != MaxMessageLen || parts[0]+parts[1] != text {
		t.Errorf("got %d parts of %d units; want a full first part and the rest", len(parts), utf16Len(parts[0]))
	}
}

func TestUTF16Len(t *testing.T) {
	tests := []struct {
		name string
		text string
		want int
	}{
		{"ascii", "abc", 3},
		{"cyrillic", "да", 2},
		{"astral", "😀", 2},
		{"invalid byte as one replacement", "\xff", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := utf16Len(tc.text); got != tc.want {
				t.Errorf("utf16Len(%q) = %d, want %d", tc.text, got, tc.want)
			}
		})
	}
}

// FuzzSplitMessage: every part fits the limit (or is one character too wide
// to split), is valid UTF-8, and the parts keep every non-space character in
// order.
func FuzzSplitMessage(f *testing.F) {
	f.Add("aaa bbb\n\nccc ddd", 12)
	f.Add("привет мир 😀😀😀", 4)
	f.Add(strings.Repeat("слово ", 1000), 4096)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		if limit < 2 || limit > 5000 || !utf8.ValidString(text) {
			t.Skip()
		}
		parts := splitMessage(text, limit)
		for _, p := range parts {
			if utf16Len(p) > limit || !utf8.ValidString(p) || p == "" {
				t.Fatalf("part %q: %d UTF-16 units, limit %d", p, utf16Len(p), limit)
			}
		}
		squash := func(s string) string { return strings.Join(strings.Fields(s), "") }
		if squash(strings.Join(parts, " ")) != squash(text) {
			t.Fatalf("parts %q lose text of %q", parts, text)
		}
	})
}
