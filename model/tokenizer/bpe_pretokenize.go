package tokenizer

import (
	"sync"
	"unicode"
	"unicode/utf8"
)

// The GPT-2 pre-tokenizer splits text into words with the regex
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// Go's regexp (RE2) has no lookahead, and a regexp would be slow in the hot
// path anyway, so this file scans by hand. Every rune matches one of the
// alternatives, so the matches tile the text and the scanner only needs the
// end of the match that starts at a given offset. Character classes follow
// Oniguruma (what Hugging Face tokenizers use): \p{L} is Unicode category L,
// \p{N} category N, \s the White_Space property, the same sets as Go's
// unicode.IsLetter, IsNumber and IsSpace.

type runeClass uint8

const (
	classOther runeClass = iota // [^\s\p{L}\p{N}]
	classLetter
	classNumber
	classSpace
)

// bmpClasses caches the class of every rune in the Basic Multilingual Plane;
// the unicode package's table search is too slow per rune for Cyrillic text.
var bmpClasses = sync.OnceValue(func() *[0x10000]runeClass {
	var t [0x10000]runeClass
	for r := range t {
		t[r] = classifyRune(rune(r))
	}
	return &t
})

func classifyRune(r rune) runeClass {
	switch {
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case unicode.IsSpace(r):
		return classSpace
	}
	return classOther
}

// nextRune decodes the rune at s[i:] with its class and width. Invalid UTF-8
// decodes as U+FFFD (width 1), which is classOther; the byte-level BPE still
// sees the original byte.
func nextRune(classes *[0x10000]runeClass, s string, i int) (runeClass, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		return classes[c], 1
	}
	// Two-byte runes (Cyrillic among them) decoded inline: the generic
	// decoder is the slowest step of the scan otherwise.
	if c >= 0xC2 && c <= 0xDF && i+1 < len(s) && s[i+1]&0xC0 == 0x80 {
		return classes[rune(c&0x1F)<<6|rune(s[i+1]&0x3F)], 2
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r < 0x10000 {
		return classes[r], n
	}
	return classifyRune(r), n
}

// preTokenEnd returns the end of the pre-token that starts at s[i:], taking
// the regex alternatives in order as a backtracking engine would.
func preTokenEnd(classes *[0x10000]runeClass, s string, i int) int {
	if s[i] == '\'' {
		if n := contractionLen(s[i:]); n > 0 {
			return i + n
		}
	}
	cls, n := nextRune(classes, s, i)
	if s[i] == ' ' && i+1 < len(s) {
		// " ?\p{L}+", " ?\p{N}+" and " ?[^\s\p{L}\p{N}]+" may take one leading space.
		if next, m := nextRune(classes, s, i+1); next != classSpace {
			return runEnd(classes, s, i+1+m, next)
		}
	}
	if cls != classSpace {
		return runEnd(classes, s, i+n, cls)
	}
	return spaceEnd(classes, s, i, n)
}

// contractionLen matches 's 't 're 've 'm 'll 'd (case-sensitive, as in GPT-2).
func contractionLen(s string) int {
	if len(s) < 2 {
		return 0
	}
	switch s[1] {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if len(s) > 2 && s[2] == 'e' {
			return 3
		}
	case 'l':
		if len(s) > 2 && s[2] == 'l' {
			return 3
		}
	}
	return 0
}

// runEnd extends a run of runes of class cls from j.
func runEnd(classes *[0x10000]runeClass, s string, j int, cls runeClass) int {
	for j < len(s) {
		c, n := nextRune(classes, s, j)
		if c != cls {
			break
		}
		j += n
	}
	return j
}

// spaceEnd handles "\s+(?!\S)|\s+" for a whitespace run starting at i (first
// rune n bytes wide): a run that reaches the end of the text is taken whole;
// otherwise the run gives up its last rune, which then leads the next word
// (" word") or stands alone; a single whitespace rune before a word is "\s+".
func spaceEnd(classes *[0x10000]runeClass, s string, i, n int) int {
	last, j := i, i+n
	for j < len(s) {
		c, m := nextRune(classes, s, j)
		if c != classSpace {
			break
		}
		last, j = j, j+m
	}
	if j == len(s) || last == i {
		return j
	}
	return last
}
