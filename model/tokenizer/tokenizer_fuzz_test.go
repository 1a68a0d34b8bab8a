package tokenizer

import (
	"testing"
	"unicode/utf8"
)

// FuzzTokenizerRoundTrip: byte-level BPE loses nothing, so decoding the ids
// of any valid UTF-8 text gives the text back, special tokens included, and
// DecodeReply never returns broken UTF-8 whatever ids it gets.
func FuzzTokenizerRoundTrip(f *testing.F) {
	tok := loadSharedTokenizer(f, "ru-tokenizer.json")
	for _, s := range []string{"", "привет", "@@ПЕРВЫЙ@@ как дела? @@ВТОРОЙ@@", "a  b\t\n\nc", "👩‍👩‍👧 ё̈", "<|endoftext|>x", "!!!???..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip()
		}
		ids := tok.Encode(s)
		if got := tok.Decode(ids); got != s {
			t.Fatalf("Decode(Encode(%q)) = %q (ids %v)", s, got, ids)
		}
		// Half a reply: a cut may split a multi-byte character.
		if r := tok.DecodeReply(ids[:len(ids)/2]); !utf8.ValidString(r) {
			t.Fatalf("DecodeReply gave broken UTF-8 %q", r)
		}
	})
}
