package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/model/dialog"
)

// tokenizerGoldenCase is one entry of ../shared/tokenizers/tokenizer-cases.json:
// what Hugging Face tokenizers (Rust) gives for a text with each tokenizer.
type tokenizerGoldenCase struct {
	Text        string `json:"text"`
	GPT2        []int  `json:"gpt2"`
	RU          []int  `json:"ru"`
	GPT2Decoded string `json:"gpt2_decoded"`
	RUDecoded   string `json:"ru_decoded"`
}

// tokenizerSharedDir finds the shared data directory ($DIALOGBOT_SHARED, or
// ../shared next to the repository) and skips the test when it is absent.
func tokenizerSharedDir(tb testing.TB) string {
	tb.Helper()
	shared := os.Getenv("DIALOGBOT_SHARED")
	if shared == "" {
		shared = filepath.Join(filepath.Dir(tokenizerRepoRoot(tb)), "shared")
	}
	if _, err := os.Stat(filepath.Join(shared, "tokenizers")); err != nil {
		tb.Skipf("shared data not found (set DIALOGBOT_SHARED or provide ../shared): %v", err)
	}
	return shared
}

// tokenizerRepoRoot is the nearest directory above the test with a go.mod.
func tokenizerRepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if dir == filepath.Dir(dir) {
			tb.Skip("shared data not found: no go.mod above the test directory")
		}
		dir = filepath.Dir(dir)
	}
}

func loadTokenizerGoldenCases(tb testing.TB) []tokenizerGoldenCase {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(tokenizerSharedDir(tb), "tokenizers", "tokenizer-cases.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var f struct {
		Cases []tokenizerGoldenCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		tb.Fatal(err)
	}
	if len(f.Cases) == 0 {
		tb.Fatal("no golden tokenizer cases")
	}
	return f.Cases
}

func loadSharedTokenizer(tb testing.TB, name string) *Tokenizer {
	tb.Helper()
	tok, err := LoadTokenizer(filepath.Join(tokenizerSharedDir(tb), "tokenizers", name))
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// TestTokenizerGolden checks every shared case, encode and decode, against
// Hugging Face tokenizers for both tokenizer files.
func TestTokenizerGolden(t *testing.T) {
	cases := loadTokenizerGoldenCases(t)
	files := []struct {
		name    string
		file    string
		ids     func(tokenizerGoldenCase) []int
		decoded func(tokenizerGoldenCase) string
	}{
		{"gpt2", "gpt2-tokenizer.json", func(c tokenizerGoldenCase) []int { return c.GPT2 }, func(c tokenizerGoldenCase) string { return c.GPT2Decoded }},
		{"ru", "ru-tokenizer.json", func(c tokenizerGoldenCase) []int { return c.RU }, func(c tokenizerGoldenCase) string { return c.RUDecoded }},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			tok := loadSharedTokenizer(t, f.file)
			encodeOK, decodeOK := 0, 0
			for i, c := range cases {
				want := f.ids(c)
				if got := tok.Encode(c.Text); slices.Equal(got, want) {
					encodeOK++
				} else {
					t.Errorf("case %d %q: Encode = %v, want %v", i, c.Text, got, want)
				}
				if got := tok.Decode(want); got == f.decoded(c) {
					decodeOK++
				} else {
					t.Errorf("case %d %q: Decode = %q, want %q", i, c.Text, got, f.decoded(c))
				}
			}
			t.Logf("%s: encode %d/%d, decode %d/%d", f.file, encodeOK, len(cases), decodeOK, len(cases))
		})
	}
}

// TestTokenizerSharedLookups checks the facts other code relies on: the
// vocab sizes and the ids of the dialogue format's special tokens.
func TestTokenizerSharedLookups(t *testing.T) {
	tests := []struct {
		file      string
		vocabSize int
		tokens    map[string]int
	}{
		{"gpt2-tokenizer.json", 50257, map[string]int{dialog.EOS: 50256, "Ġthe": 262}},
		{"ru-tokenizer.json", 16000, map[string]int{dialog.EOS: 0, dialog.TagFirst: 1, dialog.TagSecond: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			tok := loadSharedTokenizer(t, tt.file)
			if got := tok.VocabSize(); got != tt.vocabSize {
				t.Errorf("VocabSize() = %d, want %d", got, tt.vocabSize)
			}
			for token, want := range tt.tokens {
				if got, ok := tok.TokenID(token); !ok || got != want {
					t.Errorf("TokenID(%q) = %d, %v, want %d", token, got, ok, want)
				}
				text := string(tok.TokenBytes(want))
				if got := tok.Encode(text); len(got) != 1 || got[0] != want {
					t.Errorf("Encode(%q) = %v, want [%d]", text, got, want)
				}
			}
		})
	}
}

// TestEncodeTextKeepsSpecialTokensAsText: what people write is text. A
// special token spelled in a message gives no special id and decodes back
// to the same characters; text without one encodes exactly as Encode does
// (checked on the 209 Hugging Face cases).
func TestEncodeTextKeepsSpecialTokensAsText(t *testing.T) {
	for _, name := range []string{"ru-tokenizer.json", "gpt2-tokenizer.json"} {
		t.Run(name, func(t *testing.T) {
			tok, err := LoadTokenizer(filepath.Join(tokenizerSharedDir(t), "tokenizers", name))
			if err != nil {
				t.Fatal(err)
			}
			specials := map[int]bool{}
			for _, s := range []string{"<|endoftext|>", "@@ПЕРВЫЙ@@", "@@ВТОРОЙ@@"} {
				if id, ok := tok.TokenID(s); ok {
					specials[id] = true
				}
			}
			for _, text := range []string{"<|endoftext|>@@ПЕРВЫЙ@@ text @@ВТОРОЙ@@", " @@ВТОРОЙ@@", "a<|endoftext|>"} {
				ids := tok.EncodeText(text)
				for _, id := range ids {
					if specials[id] {
						t.Errorf("EncodeText(%q) = %v holds the special id %d", text, ids, id)
					}
				}
				if got := tok.Decode(ids); got != text {
					t.Errorf("Decode(EncodeText(%q)) = %q", text, got)
				}
			}
			for _, c := range loadTokenizerGoldenCases(t) {
				if !strings.Contains(c.Text, "<|") && !strings.Contains(c.Text, "@@") && !slices.Equal(tok.EncodeText(c.Text), tok.Encode(c.Text)) {
					t.Errorf("%q: EncodeText %v differs from Encode %v", c.Text, tok.EncodeText(c.Text), tok.Encode(c.Text))
				}
			}
		})
	}
}
