package tokenizer

// The heap strategy for long words, a transcription of Hugging Face's
// Word::merge_all: candidates in a min-heap by (rank, position), symbols in
// a linked list so that a merge never moves memory.

// bpeSymbol is one piece of a long word during merging.
type bpeSymbol struct {
	id         int32
	prev, next int32 // -1 at the ends
	gone       bool  // merged into its left neighbour
}

// bpeCandidate is a possible merge of the symbol at pos with its right
// neighbour: the pair (left, right) becomes id.
type bpeCandidate struct {
	rank, pos, id int32
	left, right   int32
}

// mergeHeap merges ids and returns what is left (in ids' memory) along with
// the scratch slices for reuse.
func (t *Tokenizer) mergeHeap(ids []int32, syms []bpeSymbol, h []bpeCandidate) ([]int32, []bpeSymbol, []bpeCandidate) {
	if len(ids) < 2 {
		return ids, syms, h
	}
	for i, id := range ids {
		syms = append(syms, bpeSymbol{id: id, prev: int32(i) - 1, next: int32(i) + 1})
	}
	syms[len(syms)-1].next = -1
	for i := 0; i+1 < len(syms); i++ {
		h = t.pushCandidate(h, syms, int32(i))
	}
	for len(h) > 0 {
		var top bpeCandidate
		top, h = heapPop(h)
		t.applyCandidate(syms, top, &h)
	}
	ids = ids[:0]
	for _, s := range syms {
		if !s.gone {
			ids = append(ids, s.id)
		}
	}
	return ids, syms, h
}

// applyCandidate merges top if it is still current and pushes the new pairs
// it forms with its neighbours.
func (t *Tokenizer) applyCandidate(syms []bpeSymbol, top bpeCandidate, h *[]bpeCandidate) {
	s := &syms[top.pos]
	if s.gone || s.next < 0 {
		return
	}
	ri := s.next
	right := syms[ri]
	// Symbols only grow, so an unchanged pair of ids means an unchanged
	// pair: the same staleness test as Hugging Face's, without a lookup.
	if s.id != top.left || right.id != top.right {
		return
	}
	s.id, s.next = top.id, right.next
	syms[ri].gone = true
	if right.next >= 0 {
		syms[right.next].prev = top.pos
	}
	if s.prev >= 0 {
		*h = t.pushCandidate(*h, syms, s.prev)
	}
	*h = t.pushCandidate(*h, syms, top.pos)
}

// pushCandidate adds the merge of syms[pos] with its right neighbour, if any.
func (t *Tokenizer) pushCandidate(h []bpeCandidate, syms []bpeSymbol, pos int32) []bpeCandidate {
	next := syms[pos].next
	if next < 0 {
		return h
	}
	left, right := syms[pos].id, syms[next].id
	if m := t.lookupMerge(left, right); m != noMerge {
		h = heapPush(h, bpeCandidate{rank: m.rank, pos: pos, id: m.id, left: left, right: right})
	}
	return h
}

func candidateLess(a, b bpeCandidate) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

// heapPush and heapPop are a typed binary min-heap; container/heap would box
// every candidate in an interface.
func heapPush(h []bpeCandidate, c bpeCandidate) []bpeCandidate {
	h = append(h, c)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !candidateLess(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	return h
}

func heapPop(h []bpeCandidate) (bpeCandidate, []bpeCandidate) {
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < len(h) && candidateLess(h[l], h[small]) {
			small = l
		}
		if r := l + 1; r < len(h) && candidateLess(h[r], h[small]) {
			small = r
		}
		if small == i {
			return top, h
		}
		h[i], h[small] = h[small], h[i]
		i = small
	}
}
