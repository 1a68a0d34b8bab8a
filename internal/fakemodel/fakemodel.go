// Package fakemodel is a deterministic stand-in for a torch model, for
// testing the engine, the bot and the commands without libtorch.
package fakemodel

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/dialogbot/dialogbot/model/engine"
	"github.com/dialogbot/dialogbot/model/sample"
)

// Model scores the next token from the tokens cached in a slot: the logit
// of token t is a function of (t, the slot's last token, its length), so
// results depend on the cache being right and on nothing else: a request
// gives the same tokens alone or batched with others.
type Model struct {
	VocabSize, SlotCount, Cap int
	// FailStep, when set, makes Step fail when it returns true.
	FailStep func(in engine.StepInput) bool
	// FailSetLength, when set, makes SetLength fail when it returns true.
	FailSetLength func(slot, n int) bool
	// Shape, when set, edits every row of logits before it is returned (a
	// test can make one token win).
	Shape func(logits []float32)
	// Delay makes each step take this long, as a real model's would, so
	// concurrent requests overlap.
	Delay time.Duration

	mu      sync.Mutex
	cache   [][]int64
	last    [][]float32
	Steps   int
	MaxRows int
}

// New makes a model with the given vocabulary, slots and capacity.
func New(vocab, slots, capacity int) *Model {
	return &Model{VocabSize: vocab, SlotCount: slots, Cap: capacity, cache: make([][]int64, slots)}
}

func (m *Model) Vocab() int    { return m.VocabSize }
func (m *Model) Slots() int    { return m.SlotCount }
func (m *Model) Capacity() int { return m.Cap }

// Logit is the score of token t after a cache ending in last with length n.
// Token (last*7+n) % vocab scores highest; others fall off smoothly.
func Logit(t, last, n, vocab int) float32 {
	best := (last*7 + n) % vocab
	d := float64((t - best + vocab) % vocab)
	return float32(5*math.Cos(d) - d/float64(vocab))
}

func (m *Model) Step(in engine.StepInput, out *engine.StepOutput) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.FailStep != nil && m.FailStep(in) {
		return errors.New("fake model failure")
	}
	time.Sleep(m.Delay)
	m.Steps++
	m.MaxRows = max(m.MaxRows, len(in.Slots))
	off := 0
	m.last = m.last[:0]
	for i, slot := range in.Slots {
		n := int(in.NTokens[i])
		if int(slot) >= m.SlotCount || len(m.cache[slot])+n > m.Cap {
			return fmt.Errorf("fake: slot %d overflows", slot)
		}
		m.cache[slot] = append(m.cache[slot], in.Tokens[off:off+n]...)
		off += n
		m.last = append(m.last, m.row(int(slot)))
	}
	m.fill(out)
	return nil
}

func (m *Model) row(slot int) []float32 {
	c := m.cache[slot]
	logits := make([]float32, m.VocabSize)
	for t := range logits {
		logits[t] = Logit(t, int(c[len(c)-1]), len(c), m.VocabSize)
	}
	if m.Shape != nil {
		m.Shape(logits)
	}
	return logits
}

func (m *Model) fill(out *engine.StepOutput) {
	out.Logits, out.IDs, out.LSE = out.Logits[:0], out.IDs[:0], out.LSE[:0]
	for _, row := range m.last {
		c := sample.TopKCandidates(row, out.K)
		if out.K <= 0 || out.K >= m.VocabSize {
			out.Logits = append(out.Logits, row...)
		} else {
			out.Logits = append(out.Logits, c.Logits...)
			out.IDs = append(out.IDs, c.IDs...)
		}
		out.LSE = append(out.LSE, c.LogSumExp)
	}
}

func (m *Model) Logits(rows []int32, out []float32) ([]float32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out = out[:0]
	for _, r := range rows {
		out = append(out, m.last[r]...)
	}
	return out, nil
}

func (m *Model) SetLength(slot, n int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.FailSetLength != nil && m.FailSetLength(slot, n) {
		return errors.New("fake set length failure")
	}
	m.cache[slot] = m.cache[slot][:n]
	return nil
}

func (m *Model) CopySlot(src, dst int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cache[dst] = append(m.cache[dst][:0], m.cache[src]...)
	return nil
}

// Tokens is a copy of what slot's cache holds.
func (m *Model) Tokens(slot int) []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int64(nil), m.cache[slot]...)
}

// Used lists the slots holding tokens (all should be free when idle).
func (m *Model) Used() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var used []int
	for i, c := range m.cache {
		if len(c) > 0 {
			used = append(used, i)
		}
	}
	sort.Ints(used)
	return used
}

// Greedy is the reference: the greedy continuation of prompt computed
// directly from Logit, without any cache or batching.
func Greedy(prompt []int, vocab, maxNew int, stops map[int]bool) []int {
	seq := append([]int(nil), prompt...)
	var out []int
	for len(out) < maxNew {
		best, bestV := 0, float32(math.Inf(-1))
		for t := 0; t < vocab; t++ {
			if v := Logit(t, seq[len(seq)-1], len(seq), vocab); v > bestV {
				best, bestV = t, v
			}
		}
		if stops[best] {
			break
		}
		seq, out = append(seq, best), append(out, best)
	}
	return out
}

// StepCount is how many steps ran so far; safe while the engine runs.
func (m *Model) StepCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.Steps
}
