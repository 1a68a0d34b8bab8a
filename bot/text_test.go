package bot

import "testing"

func TestCleanTextDropsControlCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                 "plain",
		"a\x00b":                "ab",
		"line\nnext\ttab":       "line\nnext\ttab",
		"\x01\x1f\x7fРусский\r": "Русский",
		"":                      "",
	} {
		if got := cleanText(in); got != want {
			t.Errorf("cleanText(%q) = %q, want %q", in, got, want)
		}
	}
}
