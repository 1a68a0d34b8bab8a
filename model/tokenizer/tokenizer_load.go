package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// tokenizerJSON is the part of Hugging Face's tokenizer.json that a
// byte-level BPE tokenizer needs.
type tokenizerJSON struct {
	AddedTokens  []addedToken    `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer *byteLevelJSON  `json:"pre_tokenizer"`
	Decoder      *byteLevelJSON  `json:"decoder"`
	Model        bpeModelJSON    `json:"model"`
}

type byteLevelJSON struct {
	Type           string `json:"type"`
	AddPrefixSpace bool   `json:"add_prefix_space"`
	UseRegex       *bool  `json:"use_regex"` // absent means true
}

type bpeModelJSON struct {
	Type                    string         `json:"type"`
	Vocab                   map[string]int `json:"vocab"`
	Merges                  []mergeRule    `json:"merges"`
	UnkToken                *string        `json:"unk_token"`
	FuseUnk                 bool           `json:"fuse_unk"`
	ByteFallback            bool           `json:"byte_fallback"`
	IgnoreMerges            bool           `json:"ignore_merges"`
	Dropout                 *float64       `json:"dropout"`
	ContinuingSubwordPrefix *string        `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string        `json:"end_of_word_suffix"`
}

// mergeRule is one line of merges: older files write "a b", newer ones ["a","b"].
type mergeRule [2]string

func (m *mergeRule) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		a, b, ok := strings.Cut(s, " ")
		if !ok || strings.Contains(b, " ") {
			return fmt.Errorf("merge %q is not two tokens separated by one space", s)
		}
		*m = mergeRule{a, b}
		return nil
	}
	var pair []string
	if err := json.Unmarshal(data, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("merge %s is not a pair", data)
	}
	*m = mergeRule{pair[0], pair[1]}
	return nil
}

// LoadTokenizer reads a Hugging Face tokenizer.json of a byte-level BPE model
// (GPT-2 style): model type BPE, a ByteLevel pre-tokenizer and decoder, no
// normalizer. Other kinds of tokenizer are refused with an error rather than
// encoded differently from the reference. The post-processor is ignored:
// Encode never adds template tokens (GPT-2's ByteLevel one adds none).
func LoadTokenizer(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := parseTokenizer(data)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", path, err)
	}
	return t, nil
}

func parseTokenizer(data []byte) (*Tokenizer, error) {
	var f tokenizerJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	t := &Tokenizer{
		vocab:          f.Model.Vocab,
		addPrefixSpace: f.PreTokenizer.AddPrefixSpace,
		useRegex:       f.PreTokenizer.UseRegex == nil || *f.PreTokenizer.UseRegex,
		ignoreMerges:   f.Model.IgnoreMerges,
		fuseUnk:        f.Model.FuseUnk,
		unk:            -1,
		cache:          newBPECache(wordCacheSize),
	}
	for _, step := range []func(*tokenizerJSON) error{t.setUnknown, t.setBytes, t.setMerges, t.setAdded} {
		if err := step(&f); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// check refuses what this tokenizer does not implement.
func (f *tokenizerJSON) check() error {
	m := f.Model
	switch {
	case m.Type != "BPE" && m.Type != "":
		return fmt.Errorf("unsupported model type %q (want BPE)", m.Type)
	case len(m.Vocab) == 0:
		return errors.New("model has no vocab")
	case f.PreTokenizer == nil || f.PreTokenizer.Type != "ByteLevel":
		return errors.New("unsupported pre_tokenizer (want ByteLevel)")
	case f.Decoder == nil || f.Decoder.Type != "ByteLevel":
		return errors.New("unsupported decoder (want ByteLevel)")
	case len(bytes.TrimSpace(f.Normalizer)) > 0 && string(bytes.TrimSpace(f.Normalizer)) != "null":
		return errors.New("unsupported normalizer (want none)")
	case m.ByteFallback:
		return errors.New("unsupported BPE option byte_fallback")
	case m.Dropout != nil && *m.Dropout > 0:
		return errors.New("unsupported BPE option dropout")
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "",
		m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "":
		return errors.New("unsupported BPE subword prefix or suffix")
	}
	return nil
}

func (t *Tokenizer) setUnknown(f *tokenizerJSON) error {
	if f.Model.UnkToken == nil {
		return nil
	}
	id, ok := t.vocab[*f.Model.UnkToken]
	if !ok {
		return fmt.Errorf("unk_token %q is not in the vocab", *f.Model.UnkToken)
	}
	t.unk = int32(id)
	return nil
}

// setBytes fills the id -> bytes table (added tokens override the vocab, as
// in Hugging Face's decode) and the id of each single byte.
func (t *Tokenizer) setBytes(f *tokenizerJSON) error {
	size := 0
	for tok, id := range t.vocab {
		if id < 0 || id > maxTokenID {
			return fmt.Errorf("vocab token %q has id %d out of range", tok, id)
		}
		size = max(size, id+1)
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 || a.ID > maxTokenID {
			return fmt.Errorf("added token %q has id %d out of range", a.Content, a.ID)
		}
		size = max(size, a.ID+1)
	}
	t.tokenBytes = make([][]byte, size)
	for tok, id := range t.vocab {
		t.tokenBytes[id] = byteLevelDecode(tok)
	}
	for _, a := range f.AddedTokens {
		t.tokenBytes[a.ID] = byteLevelDecode(a.Content)
	}
	for b := range t.byteIDs {
		t.byteIDs[b] = -1
		if id, ok := t.vocab[string(byteToRune[b])]; ok {
			t.byteIDs[b] = int32(id)
		}
	}
	return nil
}

// maxTokenID keeps ids in int32 (merge tables) and the id table small enough.
const maxTokenID = 1<<24 - 1

// setMerges builds the pair -> merged id table. As in Hugging Face, every
// token of a merge and its result must be in the vocab, and a repeated pair
// keeps its last rank.
func (t *Tokenizer) setMerges(f *tokenizerJSON) error {
	t.merges = newMergeTable(len(f.Model.Merges))
	for rank, m := range f.Model.Merges {
		a, okA := t.vocab[m[0]]
		b, okB := t.vocab[m[1]]
		c, okC := t.vocab[m[0]+m[1]]
		if !okA || !okB || !okC {
			return fmt.Errorf("merge %d (%q %q) uses a token that is not in the vocab", rank+1, m[0], m[1])
		}
		t.merges.set(int32(a), int32(b), bpeMerge{rank: int32(rank), id: int32(c)})
	}
	return nil
}

// setAdded prepares the added-token matchers: tokens with normalized=false
// are cut out of the raw text first, then those with normalized=true from
// what is left (the same text here, as there is no normalizer).
func (t *Tokenizer) setAdded(f *tokenizerJSON) error {
	t.added = make(map[string]int, len(f.AddedTokens))
	var raw, normalized []addedToken
	for _, a := range f.AddedTokens {
		t.added[a.Content] = a.ID
		if a.Normalized {
			normalized = append(normalized, a)
		} else {
			raw = append(raw, a)
		}
	}
	for _, group := range [][]addedToken{raw, normalized} {
		if len(group) > 0 {
			t.matchers = append(t.matchers, newAddedMatcher(group))
		}
	}
	return nil
}
