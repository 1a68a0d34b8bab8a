package tokenizer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// mergeBothWays merges word with the linear and the heap strategy and fails
// when they differ: bpeWord picks one by length, and both must give
// Hugging Face's result.
func mergeBothWays(tb testing.TB, tok *Tokenizer, word string) []int32 {
	tb.Helper()
	ids := tok.initialIDs(word, nil)
	linear, _ := tok.mergeLinear(slices.Clone(ids), nil)
	heap, _, _ := tok.mergeHeap(slices.Clone(ids), nil, nil)
	if !slices.Equal(linear, heap) {
		tb.Fatalf("word %q: linear merge %v, heap merge %v", word, linear, heap)
	}
	return linear
}

func TestBPEStrategiesAgreeTiny(t *testing.T) {
	tok := loadTinyTokenizer(t)
	rng := rand.New(rand.NewPCG(1, 2))
	letters := []string{"a", "b", "c", "aa", "пр", "Ñ"}
	tests := []struct {
		name  string
		words []string
	}{
		{"runs of a", func() (w []string) {
			for n := range 150 {
				w = append(w, strings.Repeat("a", n))
			}
			return w
		}()},
		{"random letters", func() (w []string) {
			for range 500 {
				var b strings.Builder
				for range rng.IntN(100) {
					b.WriteString(letters[rng.IntN(len(letters))])
				}
				w = append(w, b.String())
			}
			return w
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, w := range tt.words {
				mergeBothWays(t, tok, w)
			}
		})
	}
}

func TestBPEStrategiesAgreeShared(t *testing.T) {
	cases := loadTokenizerGoldenCases(t)
	for _, file := range []string{"gpt2-tokenizer.json", "ru-tokenizer.json"} {
		t.Run(file, func(t *testing.T) {
			tok := loadSharedTokenizer(t, file)
			for _, c := range cases {
				// Whole texts as one word stress long merges with real merge tables.
				mergeBothWays(t, tok, c.Text)
				mergeBothWays(t, tok, strings.ReplaceAll(c.Text, " ", ""))
			}
		})
	}
}

func TestBPEWordLongRun(t *testing.T) {
	tok := loadTinyTokenizer(t)
	tests := []struct {
		name string
		n    int
		want []int
	}{
		{"just below the heap", bpeLinearMax, slices.Repeat([]int{33}, bpeLinearMax/4)},
		{"heap with a tail", bpeLinearMax + 6, append(slices.Repeat([]int{33}, (bpeLinearMax+4)/4), 31)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tok.Encode(strings.Repeat("a", tt.n)); !slices.Equal(got, tt.want) {
				t.Errorf("Encode(%d × a) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}
