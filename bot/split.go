package bot

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxMessageLen is Telegram's limit on a message, in UTF-16 code units (which
// is how Telegram counts: an emoji outside the BMP counts twice).
const MaxMessageLen = 4096

// utf16Len is the length of s as Telegram counts it.
func utf16Len(s string) int {
	n := 0
	for _, r := range s { // invalid UTF-8 reads as U+FFFD: one unit
		n += utf16.RuneLen(r)
	}
	return n
}

// splitMessage cuts text into pieces of at most limit UTF-16 units, preferring
// to cut between paragraphs, then lines, then words, and only then inside a
// word (always between runes).
func splitMessage(text string, limit int) []string {
	var parts []string
	rest := strings.TrimSpace(text)
	for {
		fit := fitPrefix(rest, limit)
		if fit == len(rest) {
			break
		}
		cut := cutPoint(rest, fit)
		if part := strings.TrimSpace(rest[:cut]); part != "" {
			parts = append(parts, part)
		}
		rest = strings.TrimSpace(rest[cut:])
	}
	if rest != "" {
		parts = append(parts, rest)
	}
	return parts
}

// fitPrefix is the byte length of the longest prefix of s within limit units.
func fitPrefix(s string, limit int) int {
	n := 0
	for i, r := range s {
		w := utf16.RuneLen(r)
		if n+w > limit {
			return i
		}
		n += w
	}
	return len(s)
}

// cutPoint picks where to cut s within its first max bytes.
func cutPoint(s string, max int) int {
	head := s[:max]
	for _, sep := range []string{"\n\n", "\n", " "} {
		if i := strings.LastIndex(head, sep); i > 0 {
			return i
		}
	}
	if max == 0 { // limit below one rune: cut after it, never loop forever
		_, size := utf8.DecodeRuneInString(s)
		return size
	}
	return max
}
