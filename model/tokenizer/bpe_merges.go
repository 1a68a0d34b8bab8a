package tokenizer

import "math/bits"

// mergeTable maps a pair of token ids to its merge. It is a read-only
// open-addressing hash table: lookups are most of the cost of BPE, and this
// is several times faster than a Go map with the same keys.
type mergeTable struct {
	slots []mergeSlot
	shift uint // 64 - log2(len(slots))
}

type mergeSlot struct {
	key   uint64 // pairKey; emptyPair when unused
	merge bpeMerge
}

// emptyPair cannot be a real pair: ids are never negative.
const emptyPair = ^uint64(0)

// newMergeTable makes a table for n pairs, at most half full so that probe
// runs stay short.
func newMergeTable(n int) *mergeTable {
	size := 1 << bits.Len(uint(2*n+1))
	t := &mergeTable{slots: make([]mergeSlot, size), shift: uint(64 - bits.TrailingZeros(uint(size)))}
	for i := range t.slots {
		t.slots[i].key = emptyPair
	}
	return t
}

func (t *mergeTable) home(key uint64) int {
	return int((key * 0x9E3779B97F4A7C15) >> t.shift) // Fibonacci hashing
}

// set adds or replaces the merge of a pair (a later rule for the same pair
// wins, as when Hugging Face builds its map).
func (t *mergeTable) set(a, b int32, m bpeMerge) {
	key := pairKey(a, b)
	mask := len(t.slots) - 1
	for i := t.home(key); ; i = (i + 1) & mask {
		if s := &t.slots[i]; s.key == key || s.key == emptyPair {
			s.key, s.merge = key, m
			return
		}
	}
}

func (t *mergeTable) get(a, b int32) bpeMerge {
	key := pairKey(a, b)
	mask := len(t.slots) - 1
	for i := t.home(key); ; i = (i + 1) & mask {
		switch s := &t.slots[i]; s.key {
		case key:
			return s.merge
		case emptyPair:
			return noMerge
		}
	}
}
