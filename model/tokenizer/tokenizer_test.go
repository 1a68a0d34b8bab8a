package tokenizer

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

const tinyTokenizerPath = "testdata/tokenizer/tiny.json"

func loadTinyTokenizer(tb testing.TB) *Tokenizer {
	tb.Helper()
	tok, err := LoadTokenizer(tinyTokenizerPath)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// patchedTinyTokenizer loads tiny.json after patch has changed its decoded JSON.
func patchedTinyTokenizer(tb testing.TB, patch func(f map[string]any)) *Tokenizer {
	tb.Helper()
	tok, err := parseTokenizer(patchedTinyJSON(tb, patch))
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func patchedTinyJSON(tb testing.TB, patch func(f map[string]any)) []byte {
	tb.Helper()
	data, err := os.ReadFile(tinyTokenizerPath)
	if err != nil {
		tb.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(data, &f); err != nil {
		tb.Fatal(err)
	}
	patch(f)
	out, err := json.Marshal(f)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func modelSection(f map[string]any) map[string]any { return f["model"].(map[string]any) }

func TestTokenizerEncodeTiny(t *testing.T) {
	tok := loadTinyTokenizer(t)
	tests := []struct {
		name string
		text string
		want []int
	}{
		{"empty", "", []int{}},
		{"single merge", "ab", []int{32}},
		{"lower rank merges first even to the right", "abc", []int{1, 30}},
		{"tie merges leftmost first", "aaa", []int{31, 1}},
		{"merged pieces merge again", "aaaa", []int{33}},
		{"odd run keeps last piece", "aaaaa", []int{33, 1}},
		{"rank beats the space merge", " ab", []int{12, 32}},
		{"space joins the next word", "a a", []int{1, 34}},
		{"two spaces: last one leads the word", "a  a", []int{1, 12, 34}},
		{"three spaces: run then space-word", "a   a", []int{1, 35, 34}},
		{"trailing spaces stay one run", "a  ", []int{1, 35}},
		{"two newlines split before a word", "a\n\nb", []int{1, 13, 13, 2}},
		{"three newlines", "a\n\n\nb", []int{1, 36, 13, 2}},
		{"tab then space-word", "\t a", []int{14, 34}},
		{"tab between words", "a\tb", []int{1, 14, 2}},
		{"no-break space is whitespace", "\u00a0a", []int{26, 27, 1}},
		{"cyrillic merges", "пр", []int{39}},
		{"cyrillic with unmerged bytes", "привет", []int{39, 15, 19, 15, 20, 15, 21, 16, 22}},
		{"space before cyrillic", " пр", []int{12, 39}},
		{"emoji is four bytes", "😂", []int{23, 24, 25, 22}},
		{"contraction", "a's", []int{1, 40}},
		{"apostrophe alone", "a'b", []int{1, 6, 2}},
		{"digits and punctuation", "12!?", []int{41, 10, 11}},
		{"byte missing from vocab is dropped", "a<b", []int{1, 2}},
		{"invalid UTF-8 is encoded byte by byte", "a\xd0b", []int{1, 15, 2}},
		{"special token inside text", "a<|endoftext|>b", []int{1, 50, 2}},
		{"cyrillic special token", "@@Я@@ ab", []int{51, 12, 32}},
		{"longest added token wins", "<x><x><x>", []int{53, 52}},
		{"lstrip and rstrip take the spaces", "a <sep> b", []int{1, 54, 2}},
		{"rstrip then lstrip share spaces", "<sep> <sep>", []int{54, 54}},
		{"raw added tokens before normalized ones", "a<x>", []int{1, 52}},
		{"normalized added token", "a<xa", []int{55, 1}},
		{"single word token", "a ok!", []int{1, 12, 56, 10}},
		{"single word token inside a word is text", "oka", []int{5, 4, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for pass := range 2 { // the second pass is served from the word cache
				if got := tok.Encode(tt.text); !slices.Equal(got, tt.want) {
					t.Fatalf("pass %d: Encode(%q) = %v, want %v", pass, tt.text, got, tt.want)
				}
			}
		})
	}
}

func TestTokenizerOptions(t *testing.T) {
	tests := []struct {
		name  string
		patch func(f map[string]any)
		text  string
		want  []int
	}{
		{"merges as strings", func(f map[string]any) {
			m := modelSection(f)
			var merges []any
			for _, p := range m["merges"].([]any) {
				pair := p.([]any)
				merges = append(merges, pair[0].(string)+" "+pair[1].(string))
			}
			m["merges"] = merges
		}, "abc aaaa пр", []int{1, 30, 12, 33, 12, 39}},
		{"add_prefix_space", func(f map[string]any) {
			f["pre_tokenizer"].(map[string]any)["add_prefix_space"] = true
		}, "a<|endoftext|>a", []int{34, 50, 34}},
		{"no regex: one word", func(f map[string]any) {
			f["pre_tokenizer"].(map[string]any)["use_regex"] = false
		}, "a a", []int{1, 34}},
		{"no regex: contraction is not split", func(f map[string]any) {
			f["pre_tokenizer"].(map[string]any)["use_regex"] = false
		}, "a's", []int{1, 40}},
		{"ignore_merges takes whole vocab words", func(f map[string]any) {
			modelSection(f)["ignore_merges"] = true
		}, "ba", []int{42}},
		{"merges without ignore_merges", func(map[string]any) {}, "ba", []int{2, 1}},
		{"unknown byte becomes unk", func(f map[string]any) {
			modelSection(f)["unk_token"] = "<unk>"
		}, "a<<b", []int{1, 43, 43, 2}},
		{"fused unknown bytes", func(f map[string]any) {
			modelSection(f)["unk_token"] = "<unk>"
			modelSection(f)["fuse_unk"] = true
		}, "a<<b", []int{1, 43, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := patchedTinyTokenizer(t, tt.patch)
			if got := tok.Encode(tt.text); !slices.Equal(got, tt.want) {
				t.Fatalf("Encode(%q) = %v, want %v", tt.text, got, tt.want)
			}
		})
	}
}

func TestTokenizerDecode(t *testing.T) {
	tok := loadTinyTokenizer(t)
	tests := []struct {
		name      string
		ids       []int
		want      string
		wantReply string
	}{
		{"empty", nil, "", ""},
		{"merged cyrillic", []int{39}, "пр", "пр"},
		{"half a cyrillic letter", []int{15}, "\uFFFD", ""},
		{"cut emoji is one replacement", []int{23, 24, 25}, "\uFFFD", ""},
		{"cut emoji then text", []int{23, 24, 25, 1}, "\uFFFDa", "a"},
		{"lone lead byte then a letter", []int{15, 15, 17}, "\uFFFDп", "п"},
		{"added tokens keep their text", []int{51, 12, 32}, "@@Я@@ ab", "@@Я@@ ab"},
		{"special token text", []int{1, 50}, "a<|endoftext|>", "a<|endoftext|>"},
		{"unknown ids are skipped", []int{28, -1, 99999, 1}, "a", "a"},
		{"reply trimmed, fragment dropped", []int{12, 1, 12, 15}, " a \uFFFD", "a"},
		{"whitespace kept by decode", []int{13, 34, 35}, "\n a  ", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tok.Decode(tt.ids); got != tt.want {
				t.Errorf("Decode(%v) = %q, want %q", tt.ids, got, tt.want)
			}
			if got := tok.DecodeReply(tt.ids); got != tt.wantReply {
				t.Errorf("DecodeReply(%v) = %q, want %q", tt.ids, got, tt.wantReply)
			}
		})
	}
}

func TestTokenizerLookups(t *testing.T) {
	tok := loadTinyTokenizer(t)
	if got := tok.VocabSize(); got != 57 {
		t.Errorf("VocabSize() = %d, want 57", got)
	}
	bytesTests := []struct {
		name string
		id   int
		want []byte
	}{
		{"byte token", 13, []byte("\n")},
		{"space word", 34, []byte(" a")},
		{"half a letter", 15, []byte{0xD0}},
		{"special token", 50, []byte("<|endoftext|>")},
		{"cyrillic special token", 51, []byte("@@Я@@")},
		{"unused id", 28, nil},
		{"negative id", -1, nil},
		{"past the end", 57, nil},
	}
	for _, tt := range bytesTests {
		t.Run("TokenBytes/"+tt.name, func(t *testing.T) {
			if got := tok.TokenBytes(tt.id); !slices.Equal(got, tt.want) {
				t.Errorf("TokenBytes(%d) = %q, want %q", tt.id, got, tt.want)
			}
		})
	}
	idTests := []struct {
		token  string
		want   int
		wantOK bool
	}{
		{"<|endoftext|>", 50, true},
		{"@@Я@@", 51, true},
		{"Ġa", 34, true},
		{" a", 0, false},
		{"zzz", 0, false},
	}
	for _, tt := range idTests {
		t.Run("TokenID/"+tt.token, func(t *testing.T) {
			got, ok := tok.TokenID(tt.token)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("TokenID(%q) = %d, %v, want %d, %v", tt.token, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestLoadTokenizerErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	patched := func(patch func(f map[string]any)) []byte { return patchedTinyJSON(t, patch) }
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{"missing file", filepath.Join(dir, "nope.json"), "no such file"},
		{"bad json", write("bad.json", []byte(`{"model": {`)), "parse tokenizer.json"},
		{"not an object", write("list.json", []byte(`[1, 2]`)), "parse tokenizer.json"},
		{"unknown model type", write("wp.json", patched(func(f map[string]any) { modelSection(f)["type"] = "WordPiece" })), `unsupported model type "WordPiece"`},
		{"no vocab", write("novocab.json", patched(func(f map[string]any) { delete(modelSection(f), "vocab") })), "no vocab"},
		{"merge of unknown token", write("merge.json", patched(func(f map[string]any) {
			modelSection(f)["merges"] = []any{[]any{"a", "zz"}}
		})), `merge 1 ("a" "zz")`},
		{"merge string without space", write("merge2.json", patched(func(f map[string]any) {
			modelSection(f)["merges"] = []any{"ab"}
		})), "not two tokens"},
		{"merge with three parts", write("merge3.json", patched(func(f map[string]any) {
			modelSection(f)["merges"] = []any{[]any{"a", "b", "c"}}
		})), "not a pair"},
		{"other pre-tokenizer", write("pre.json", patched(func(f map[string]any) {
			f["pre_tokenizer"] = map[string]any{"type": "Whitespace"}
		})), "unsupported pre_tokenizer"},
		{"no decoder", write("dec.json", patched(func(f map[string]any) { f["decoder"] = nil })), "unsupported decoder"},
		{"normalizer", write("norm.json", patched(func(f map[string]any) {
			f["normalizer"] = map[string]any{"type": "NFC"}
		})), "unsupported normalizer"},
		{"byte fallback", write("fallback.json", patched(func(f map[string]any) { modelSection(f)["byte_fallback"] = true })), "byte_fallback"},
		{"unk not in vocab", write("unk.json", patched(func(f map[string]any) { modelSection(f)["unk_token"] = "[UNK]" })), `unk_token "[UNK]"`},
		{"negative id", write("neg.json", patched(func(f map[string]any) { modelSection(f)["vocab"].(map[string]any)["a"] = -3 })), "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := LoadTokenizer(tt.path)
			if err == nil {
				t.Fatalf("LoadTokenizer = %v, want an error containing %q", tok, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	if _, err := LoadTokenizer(filepath.Join(dir, "nope.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file error %v does not wrap fs.ErrNotExist", err)
	}
}

// TestTokenizerConcurrent encodes from many goroutines at once (run with
// -race): the word cache and the scratch pool are shared.
func TestTokenizerConcurrent(t *testing.T) {
	tok := loadTinyTokenizer(t)
	texts := []string{"abc aaaa", "привет  пр", "a\n\n\nb <sep> ok", "😂 a's 12!?"}
	want := make([][]int, len(texts))
	for i, text := range texts {
		want[i] = loadTinyTokenizer(t).Encode(text)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g + i) % len(texts)
				if got := tok.Encode(texts[k]); !slices.Equal(got, want[k]) {
					t.Errorf("Encode(%q) = %v, want %v", texts[k], got, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
}
