package sample

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Candidates is one row of next-token logits as the inference bridge returns
// it: either the whole vocabulary (Full) or only the K largest raw logits,
// picked on the device so that only K values cross to the host.
type Candidates struct {
	IDs       []int32   // token ids, sorted by Logits descending; nil when Full (then id = index)
	Logits    []float32 // raw model logits
	Full      bool      // covers the whole vocabulary
	LogSumExp float32   // log(sum(exp(raw logits))) over the whole vocabulary
}

// ErrNeedFullLogits says that the partial candidates of a row cannot give the
// exact answer: the caller must fetch that row's full logits and call Next
// again. Next draws nothing from its random source when it returns it, so the
// retry samples exactly what a full-logits run would have.
var ErrNeedFullLogits = errors.New("sampler needs the full logits of this row")

// size is the number of entries of the row.
func (c Candidates) size() int { return len(c.Logits) }

// id is the token id of entry i of the row.
func (c Candidates) id(i int) int {
	if c.Full {
		return i
	}
	return int(c.IDs[i])
}

// check rejects rows that Next could not read without going out of bounds.
func (c Candidates) check() error {
	if len(c.Logits) == 0 {
		return errors.New("candidates: empty row")
	}
	if c.Full {
		return nil
	}
	if len(c.IDs) != len(c.Logits) {
		return fmt.Errorf("candidates: %d ids for %d logits", len(c.IDs), len(c.Logits))
	}
	for _, id := range c.IDs {
		if id < 0 {
			return fmt.Errorf("candidates: negative token id %d", id)
		}
	}
	return nil
}

// TopKCandidates builds the row the device would return from a full row of
// logits: the k largest (ties broken by the smaller id), sorted descending,
// with the log-sum-exp of all logits. k <= 0 or k >= len(logits) gives a Full
// row that shares logits. It is a CPU helper for fakes, tests and benchmarks.
func TopKCandidates(logits []float32, k int) Candidates {
	lse := float32(logSumExp(logits))
	if k <= 0 || k >= len(logits) {
		return Candidates{Logits: logits, Full: true, LogSumExp: lse}
	}
	kth := kthLargest(logits, k, make([]float32, 0, k))
	pos := make([]int, 0, k)
	for i, v := range logits {
		if v > kth {
			pos = append(pos, i)
		}
	}
	// Index order makes the ties at the k-th value go to the smaller ids.
	for i, v := range logits {
		if v == kth && len(pos) < k {
			pos = append(pos, i)
		}
	}
	slices.SortFunc(pos, func(a, b int) int { return byValueThenID(float64(logits[a]), float64(logits[b]), a, b) })
	c := Candidates{IDs: make([]int32, k), Logits: make([]float32, k), LogSumExp: lse}
	for j, i := range pos {
		c.IDs[j], c.Logits[j] = int32(i), logits[i]
	}
	return c
}

// byValueThenID orders entries by value descending and then by id ascending:
// the one order the sampler walks, whatever order the device returned ties in,
// so partial and full rows sample the same token from the same random draw.
func byValueThenID(va, vb float64, ida, idb int) int {
	if c := cmp.Compare(vb, va); c != 0 {
		return c
	}
	return cmp.Compare(ida, idb)
}

// logSumExp is log(sum(exp(x))) computed in float64 around the maximum, so
// that large logits do not overflow.
func logSumExp(xs []float32) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = max(m, float64(x))
	}
	if math.IsInf(m, 0) {
		return m
	}
	var sum float64
	for _, x := range xs {
		sum += math.Exp(float64(x) - m)
	}
	return m + math.Log(sum)
}

// kthLargest returns the k-th largest value of vals counting duplicates (what
// torch.topk(vals, k).values[-1] is), 1 <= k <= len(vals). It keeps a min-heap
// of the k best in heap (reused storage), O(n log k), so a 50k vocabulary is
// never sorted.
func kthLargest[T float32 | float64](vals []T, k int, heap []T) T {
	heap = append(heap[:0], vals[:k]...)
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(heap, i)
	}
	for _, v := range vals[k:] {
		if v > heap[0] {
			heap[0] = v
			siftDown(heap, 0)
		}
	}
	return heap[0]
}

// siftDown restores the min-heap property below index i.
func siftDown[T float32 | float64](h []T, i int) {
	for {
		least, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[l] < h[least] {
			least = l
		}
		if r < len(h) && h[r] < h[least] {
			least = r
		}
		if least == i {
			return
		}
		h[i], h[least] = h[least], h[i]
		i = least
	}
}
