package tokenizer

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// addedToken is an entry of tokenizer.json's added_tokens: special tokens
// such as "<|endoftext|>" and the speaker tags, and any other token that must
// be matched in the text as a whole before BPE sees it.
type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// addedMatcher finds added tokens in text the way Hugging Face's
// aho-corasick (MatchKind::LeftmostLongest) does: the match that starts
// first, the longest one there, then on from its end.
type addedMatcher struct {
	first   [256]bool         // bytes that start some token, for a fast scan
	byFirst [256][]addedToken // longest first
}

type addedMatch struct {
	start, end, id int
}

func newAddedMatcher(tokens []addedToken) *addedMatcher {
	m := &addedMatcher{}
	for _, tok := range tokens {
		if tok.Content != "" {
			b := tok.Content[0]
			m.first[b] = true
			m.byFirst[b] = append(m.byFirst[b], tok)
		}
	}
	for _, list := range m.byFirst {
		sort.SliceStable(list, func(i, j int) bool { return len(list[i].Content) > len(list[j].Content) })
	}
	return m
}

// next finds the first added token in s at or after from. floor is where the
// previous match ended: lstrip never reaches back past it.
func (m *addedMatcher) next(s string, from, floor int) (addedMatch, bool) {
	for i := from; i < len(s); i++ {
		if !m.first[s[i]] {
			continue
		}
		tok, ok := m.longestAt(s, i)
		if !ok {
			continue
		}
		start, end := i, i+len(tok.Content)
		if tok.SingleWord && !isSingleWord(s, start, end) {
			i = end - 1 // a discarded match is still consumed, as in Hugging Face
			continue
		}
		if tok.LStrip {
			start = max(spaceRunStart(s, start), floor)
		}
		if tok.RStrip {
			end = spaceRunEnd(s, end)
		}
		return addedMatch{start: start, end: end, id: tok.ID}, true
	}
	return addedMatch{}, false
}

func (m *addedMatcher) longestAt(s string, i int) (addedToken, bool) {
	for _, tok := range m.byFirst[s[i]] {
		if len(s)-i >= len(tok.Content) && s[i:i+len(tok.Content)] == tok.Content {
			return tok, true
		}
	}
	return addedToken{}, false
}

// isSingleWord: a single_word token must not touch a letter or digit on either side.
func isSingleWord(s string, start, end int) bool {
	before, _ := utf8.DecodeLastRuneInString(s[:start])
	after, _ := utf8.DecodeRuneInString(s[end:])
	return (start == 0 || !isAlphanumeric(before)) && (end == len(s) || !isAlphanumeric(after))
}

// isAlphanumeric is Rust's char::is_alphanumeric (Alphabetic or Numeric).
func isAlphanumeric(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Other_Alphabetic, r)
}

// spaceRunStart is where the whitespace that ends s[:i] begins.
func spaceRunStart(s string, i int) int {
	for i > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:i])
		if !unicode.IsSpace(r) {
			break
		}
		i -= n
	}
	return i
}

// spaceRunEnd is where the whitespace that starts s[i:] ends.
func spaceRunEnd(s string, i int) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += n
	}
	return i
}
