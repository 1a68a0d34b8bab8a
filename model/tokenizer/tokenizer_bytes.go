package tokenizer

import "unicode/utf8"

// Byte-level BPE works on bytes, but its vocab and merges are written as
// text: GPT-2 maps each of the 256 byte values to a printable rune (printable
// ASCII and Latin-1 map to themselves, the rest to U+0100..U+0143), so that a
// token like "Ġпр" is stored as "ĠÐ¿ÑĢ". These tables are that mapping.
var byteToRune, runeToByte = byteLevelAlphabet()

// runeToByte is indexed by rune; -1 marks runes outside the alphabet.
const byteLevelMaxRune = 0x144

func byteLevelAlphabet() (fwd [256]rune, back [byteLevelMaxRune]int16) {
	for i := range back {
		back[i] = -1
	}
	next := rune(0x100)
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !byteLevelPrintable(b) {
			r = next
			next++
		}
		fwd[b] = r
		back[r] = int16(b)
	}
	return fwd, back
}

// byteLevelPrintable reports the bytes GPT-2 keeps as their own rune:
// '!'..'~', '¡'..'¬' and '®'..'ÿ'.
func byteLevelPrintable(b int) bool {
	return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
}

// byteLevelDecode turns a vocab string back into the bytes it stands for.
// Like Hugging Face's ByteLevel decoder, a token with any rune outside the
// alphabet (an added token such as "@@ПЕРВЫЙ@@") is taken as plain UTF-8.
func byteLevelDecode(token string) []byte {
	out := make([]byte, 0, len(token))
	for _, r := range token {
		if r >= byteLevelMaxRune || runeToByte[r] < 0 {
			return []byte(token)
		}
		out = append(out, byte(runeToByte[r]))
	}
	return out
}

// byteLevelEncode is the inverse: raw bytes to their vocab spelling.
func byteLevelEncode(b []byte) string {
	out := make([]rune, len(b))
	for i, c := range b {
		out[i] = byteToRune[c]
	}
	return string(out)
}

// appendUTF8Lossy appends b to dst with every invalid sequence replaced by
// U+FFFD the way Rust's String::from_utf8_lossy does it (one replacement per
// maximal invalid subpart), which is what Hugging Face's decode returns.
// Go's own conversions replace byte by byte, which would differ.
func appendUTF8Lossy(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			dst = append(dst, b[i:i+n]...)
			i += n
			continue
		}
		dst = append(dst, "\uFFFD"...)
		i += invalidUTF8Len(b[i:])
	}
	return dst
}

// appendUTF8Valid appends only the valid UTF-8 sequences of b: a reply cut in
// the middle of a multi-byte character loses the fragment instead of showing
// a replacement character.
func appendUTF8Valid(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			dst = append(dst, b[i:i+n]...)
		}
		i += n
	}
	return dst
}

// invalidUTF8Len is the length of the maximal invalid subpart at the start
// of b (Unicode's "substitution of maximal subparts"): a lead byte and as
// many following bytes as could still have continued a valid sequence.
func invalidUTF8Len(b []byte) int {
	need, lo, hi := utf8SeqShape(b[0])
	n := 1
	for ; n <= need && n < len(b); n++ {
		c := b[n]
		if n > 1 {
			lo, hi = 0x80, 0xBF
		}
		if c < lo || c > hi {
			break
		}
	}
	return n
}

// utf8SeqShape gives the number of continuation bytes a lead byte needs and
// the valid range of the first one (narrower for E0, ED, F0, F4 to exclude
// overlong forms, surrogates and code points above U+10FFFF).
func utf8SeqShape(lead byte) (need int, lo, hi byte) {
	switch {
	case lead >= 0xC2 && lead <= 0xDF:
		return 1, 0x80, 0xBF
	case lead == 0xE0:
		return 2, 0xA0, 0xBF
	case lead == 0xED:
		return 2, 0x80, 0x9F
	case lead >= 0xE1 && lead <= 0xEF:
		return 2, 0x80, 0xBF
	case lead == 0xF0:
		return 3, 0x90, 0xBF
	case lead >= 0xF1 && lead <= 0xF3:
		return 3, 0x80, 0xBF
	case lead == 0xF4:
		return 3, 0x80, 0x8F
	}
	return 0, 0, 0
}
