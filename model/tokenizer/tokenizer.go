package tokenizer

import (
	"strings"
)

// Tokenizer is a byte-level BPE tokenizer (GPT-2 and ruDialoGPT style) loaded
// from a Hugging Face tokenizer.json. It reproduces Hugging Face tokenizers'
// encode and decode id for id; see LoadTokenizer for what it accepts. It is
// safe for concurrent use.
//
// It is written here rather than taken from github.com/sugarme/tokenizer,
// which loses special tokens, lacks GPT-2's "\s+(?!\S)" whitespace rule and
// breaks BPE ties in the wrong order (5/209 and 65/209 wrong on the shared
// golden cases).
type Tokenizer struct {
	vocab      map[string]int // vocab spelling (byte-level alphabet) -> id
	added      map[string]int // added token content -> id
	tokenBytes [][]byte       // id -> bytes it decodes to; nil for unused ids
	byteIDs    [256]int32     // id of each single byte, -1 when missing
	merges     *mergeTable
	// matchers split out added tokens before BPE: first those matched on the
	// raw text, then those matched on the normalized text, as Hugging Face does.
	matchers []*addedMatcher
	cache    *bpeCache

	addPrefixSpace, useRegex, ignoreMerges, fuseUnk bool
	unk                                             int32 // -1 without an unknown token
}

// wordCacheSize is about how many distinct words each tokenizer remembers.
const wordCacheSize = 16384

// Encode returns the ids of text. Added and special tokens written in the
// text (such as "@@ПЕРВЫЙ@@") become their own ids; no other special tokens
// are added. Invalid UTF-8 in text is kept byte for byte (each bad byte
// counts as punctuation for the pre-tokenizer), so nothing is lost.
func (t *Tokenizer) Encode(text string) []int {
	return t.encodeAdded(text, 0, make([]int, 0, len(text)/3+1))
}

// EncodeText returns the ids of text as plain text: a special or added
// token written in it ("@@ПЕРВЫЙ@@", "<|endoftext|>") is encoded as the
// characters it is made of, never as its own id. Message text, history and
// training text go through here, so nobody can forge a turn or a stop tag;
// only the prompt format inserts special tokens (through Encode). For text
// without added tokens in it, EncodeText and Encode give the same ids.
func (t *Tokenizer) EncodeText(text string) []int {
	return t.encodePlain(text, make([]int, 0, len(text)/3+1))
}

// encodeAdded cuts text at the added tokens of matchers[level] and passes
// the pieces between them to the next level; after the last level comes BPE.
func (t *Tokenizer) encodeAdded(text string, level int, ids []int) []int {
	if level == len(t.matchers) {
		return t.encodePlain(text, ids)
	}
	prev := 0
	for {
		m, ok := t.matchers[level].next(text, prev, prev)
		if !ok {
			break
		}
		if m.start > prev {
			ids = t.encodeAdded(text[prev:m.start], level+1, ids)
		}
		ids = append(ids, m.id)
		prev = m.end
	}
	if prev < len(text) {
		ids = t.encodeAdded(text[prev:], level+1, ids)
	}
	return ids
}

// encodePlain is the ByteLevel pre-tokenizer followed by BPE on each word.
func (t *Tokenizer) encodePlain(text string, ids []int) []int {
	if t.addPrefixSpace && !strings.HasPrefix(text, " ") {
		text = " " + text
	}
	if !t.useRegex {
		return t.encodeWord(text, ids)
	}
	classes := bmpClasses()
	for i := 0; i < len(text); {
		j := preTokenEnd(classes, text, i)
		ids = t.encodeWord(text[i:j], ids)
		i = j
	}
	return ids
}

func (t *Tokenizer) encodeWord(word string, ids []int) []int {
	if cached, ok := t.cache.get(word); ok {
		return append(ids, cached...)
	}
	n := len(ids)
	if id, ok := t.wholeWord(word); ok {
		ids = append(ids, id)
	} else {
		ids = t.bpeWord(word, ids)
	}
	t.cache.put(word, ids[n:])
	return ids
}

// wholeWord implements the model's ignore_merges option: a word that is in
// the vocab as a whole is taken as is.
func (t *Tokenizer) wholeWord(word string) (int, bool) {
	if !t.ignoreMerges {
		return 0, false
	}
	id, ok := t.vocab[byteLevelEncode([]byte(word))]
	return id, ok
}

// Decode returns the text of ids as Hugging Face's decode does with
// skip_special_tokens=False: special tokens are kept as text, unknown ids are
// skipped, and invalid UTF-8 (a character cut between ids) becomes U+FFFD.
func (t *Tokenizer) Decode(ids []int) string {
	return string(appendUTF8Lossy(nil, t.appendBytes(nil, ids)))
}

// DecodeReply is Decode for text shown to people: incomplete or invalid
// UTF-8 is dropped rather than replaced (a reply cut in the middle of a
// Cyrillic letter shows no "�"), and surrounding whitespace is trimmed.
func (t *Tokenizer) DecodeReply(ids []int) string {
	return strings.TrimSpace(string(appendUTF8Valid(nil, t.appendBytes(nil, ids))))
}

func (t *Tokenizer) appendBytes(dst []byte, ids []int) []byte {
	for _, id := range ids {
		dst = append(dst, t.TokenBytes(id)...)
	}
	return dst
}

// TokenBytes returns the raw bytes a token stands for (for an added token,
// its text); nil for an unknown id. The slice must not be modified.
func (t *Tokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.tokenBytes) {
		return nil
	}
	return t.tokenBytes[id]
}

// TokenID looks up an added or special token by its text, or a vocab entry
// by its spelling in the vocab (byte-level alphabet, e.g. "Ġthe").
func (t *Tokenizer) TokenID(token string) (int, bool) {
	if id, ok := t.added[token]; ok {
		return id, true
	}
	id, ok := t.vocab[token]
	return id, ok
}

// VocabSize is the largest id plus one: the size of the model's logits.
func (t *Tokenizer) VocabSize() int {
	return len(t.tokenBytes)
}
