package tokenizer

import (
	"math"
	"sync"
)

// bpeMerge is what a merge rule turns a pair of ids into, and its priority
// (its line in the merges list; lower merges first).
type bpeMerge struct {
	rank, id int32
}

// noMerge marks a pair that no rule merges.
var noMerge = bpeMerge{rank: math.MaxInt32, id: -1}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func (t *Tokenizer) lookupMerge(a, b int32) bpeMerge {
	return t.merges.get(a, b)
}

// bpeScratch is the reusable working memory of one word's merges, pooled
// because every cache miss needs it.
type bpeScratch struct {
	ids   []int32
	pairs []bpeMerge
	syms  []bpeSymbol
	heap  []bpeCandidate
}

var bpeScratchPool = sync.Pool{New: func() any { return new(bpeScratch) }}

// bpeLinearMax is the longest word (in initial symbols) merged by scanning
// for the best pair at each step, O(n²) but with no heap; longer words (rare
// runs of letters) use the heap, O(n log n).
const bpeLinearMax = 64

// bpeWord appends the ids of one pre-token (raw bytes) to out. Both merge
// strategies follow Hugging Face's Word::merge_all: always the pair with the
// lowest rank, the leftmost one on ties, which is what makes runs like
// "!!!???" and "аааа" come out as in the reference.
func (t *Tokenizer) bpeWord(word string, out []int) []int {
	sc := bpeScratchPool.Get().(*bpeScratch)
	sc.ids = t.initialIDs(word, sc.ids[:0])
	if len(sc.ids) <= bpeLinearMax {
		sc.ids, sc.pairs = t.mergeLinear(sc.ids, sc.pairs[:0])
	} else {
		sc.ids, sc.syms, sc.heap = t.mergeHeap(sc.ids, sc.syms[:0], sc.heap[:0])
	}
	for _, id := range sc.ids {
		out = append(out, int(id))
	}
	bpeScratchPool.Put(sc)
	return out
}

// initialIDs makes one symbol per byte. A byte missing from the vocab
// becomes the unknown token when there is one (consecutive ones fused with
// fuse_unk) and is dropped otherwise, as in Hugging Face; a byte-level vocab
// normally has all 256 bytes.
func (t *Tokenizer) initialIDs(word string, ids []int32) []int32 {
	prevUnknown := false
	for i := 0; i < len(word); i++ {
		id := t.byteIDs[word[i]]
		unknown := id < 0
		if unknown && t.unk >= 0 && !(prevUnknown && t.fuseUnk) {
			id = t.unk
		}
		prevUnknown = unknown
		if id >= 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

// mergeLinear merges a short word in place: pairs[i] is the merge of ids[i]
// and ids[i+1]; each step applies the best one and updates its neighbours.
func (t *Tokenizer) mergeLinear(ids []int32, pairs []bpeMerge) ([]int32, []bpeMerge) {
	for i := 0; i+1 < len(ids); i++ {
		pairs = append(pairs, t.lookupMerge(ids[i], ids[i+1]))
	}
	for {
		best := -1
		for i, p := range pairs {
			if p.rank != noMerge.rank && (best < 0 || p.rank < pairs[best].rank) {
				best = i
			}
		}
		if best < 0 {
			return ids, pairs
		}
		// Remove ids[best+1] and pairs[best] by hand: slices.Delete would
		// also clear the freed tail, work wasted on scratch memory.
		ids[best] = pairs[best].id
		ids = ids[:best+1+copy(ids[best+1:], ids[best+2:])]
		pairs = pairs[:best+copy(pairs[best:], pairs[best+1:])]
		if best > 0 {
			pairs[best-1] = t.lookupMerge(ids[best-1], ids[best])
		}
		if best < len(pairs) {
			pairs[best] = t.lookupMerge(ids[best], ids[best+1])
		}
	}
}
