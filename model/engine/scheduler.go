package engine

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dialogbot/dialogbot/model/sample"
)

// scheduler is the engine's loop state. Only the loop goroutine touches it.
type scheduler struct {
	e          *Engine
	free       []bool // free[slot]
	waiting    []*job // FIFO, not yet holding slots
	prefilling []*job // holding slots, prompt not fully in the cache
	decoding   []*sequence
	parked     []*parkedCache // finished sequences' caches kept for their conversation, oldest first (prefixcache.go)
	broken     int            // slots out of use for good: their cache could not be reset

	in       StepInput
	out      StepOutput
	rows     []*sequence // the sequence of each row of the last step
	picks    []pick
	full     []float32 // full-logits buffer for rows that need them
	fullRows []int32
}

func newScheduler(e *Engine) *scheduler {
	s := &scheduler{e: e, free: make([]bool, e.model.Slots())}
	for i := range s.free {
		s.free[i] = true
	}
	return s
}

func (s *scheduler) run() {
	defer close(s.e.stopped)
	for {
		if !s.receive() {
			s.failAll(ErrEngineClosed)
			return
		}
		s.dropCancelled()
		s.admit()
		if len(s.prefilling) > 0 {
			s.prefillStep()
		}
		if len(s.decoding) > 0 {
			s.decodeStep()
		}
	}
}

// receive takes new requests: it blocks only when there is nothing to run.
func (s *scheduler) receive() bool {
	idle := len(s.waiting)+len(s.prefilling)+len(s.decoding) == 0
	if idle {
		select {
		case j := <-s.e.requests:
			s.waiting = append(s.waiting, j)
		case <-s.e.quit:
			return false
		}
	}
	for {
		select {
		case j := <-s.e.requests:
			s.waiting = append(s.waiting, j)
		case <-s.e.quit:
			return false
		default:
			return true
		}
	}
}

// dropCancelled ends jobs whose context is done, freeing their slots.
func (s *scheduler) dropCancelled() {
	s.waiting = slices.DeleteFunc(s.waiting, func(j *job) bool {
		if err := j.ctx.Err(); err != nil {
			j.done <- jobResult{err: err}
			return true
		}
		return false
	})
	for _, j := range slices.Clone(s.prefilling) {
		if err := j.ctx.Err(); err != nil {
			s.fail(j, err)
		}
	}
	for _, q := range slices.Clone(s.decoding) {
		if err := q.job.ctx.Err(); err != nil && !q.done {
			s.fail(q.job, err)
		}
	}
}

// admit gives waiting jobs their slots, in order, while enough are free.
// A job whose conversation has a parked cache sharing a prefix with its
// prompt takes that slot and starts its prefill after the shared part.
func (s *scheduler) admit() {
	for len(s.waiting) > 0 {
		j := s.waiting[0]
		if usable := len(s.free) - s.broken; j.req.Candidates > usable {
			s.waiting = s.waiting[1:]
			s.refuse(j, nil, fmt.Errorf("%d candidates asked for, but only %d of the model's slots are usable", j.req.Candidates, usable))
			continue
		}
		reuse, shared := s.bestParked(j)
		if j.req.CacheKey != "" {
			// This job supersedes its conversation's other caches: they go
			// before any other conversation's cache is evicted for it.
			s.dropParked(func(p *parkedCache) bool { return p.key == j.req.CacheKey && p != reuse })
		}
		need := j.req.Candidates
		if reuse != nil {
			need--
		}
		slots := s.takeSlots(need, reuse)
		if slots == nil {
			return
		}
		s.waiting = s.waiting[1:]
		if reuse != nil {
			s.unpark(reuse)
			if err := s.e.model.SetLength(reuse.slot, shared); err != nil {
				s.refuse(j, append(slots, reuse.slot), fmt.Errorf("reusing a cached prompt: %w", err))
				continue
			}
			slots = append([]int{reuse.slot}, slots...)
			j.prefilled = shared
			s.e.reusedTokens.Add(int64(shared))
		}
		s.e.promptTokens.Add(int64(len(j.req.Prompt)))
		for i, slot := range slots {
			ids := make([]int, len(j.req.Prompt), len(j.req.Prompt)+j.req.Params.MaxNewTokens+1)
			copy(ids, j.req.Prompt)
			j.seqs = append(j.seqs, &sequence{job: j, index: i, slot: slot, ids: ids, ownsSlot: true,
				sampler: sample.NewSampler(j.req.Params, j.rng(i), j.req.StopIDs)})
		}
		s.prefilling = append(s.prefilling, j)
	}
}

// refuse answers a job that was given slots but cannot start.
func (s *scheduler) refuse(j *job, slots []int, err error) {
	for _, slot := range slots {
		s.freeSlot(slot)
	}
	j.finished = -1
	j.done <- jobResult{err: err}
}

// takeSlots reserves n free slots, lowest first, so that the active
// sequences tend to fill slots 0..B-1, which the bridge reads without a copy.
// When too few are free, parked caches give theirs up, oldest first (never
// keep, the one the job is about to reuse); nil means the job must wait.
func (s *scheduler) takeSlots(n int, keep *parkedCache) []int {
	free := 0
	for _, f := range s.free {
		if f {
			free++
		}
	}
	if free < n {
		evictable := len(s.parked)
		if keep != nil {
			evictable--
		}
		if free+evictable < n {
			return nil
		}
		s.evictParked(n-free, keep)
	}
	slots := make([]int, 0, n) // empty, not nil, when a reused slot is all the job needs
	for i, f := range s.free {
		if f && len(slots) < n {
			slots = append(slots, i)
		}
	}
	if len(slots) < n { // a parked slot that could not be reset stays out of use
		return nil
	}
	for _, slot := range slots {
		s.free[slot] = false
	}
	return slots
}

// prefillStep runs the next chunk of each prefilling prompt, within the
// chunk budget, in one step. Jobs whose prompt is then complete copy the
// cache to their other candidates and sample every candidate's first token.
func (s *scheduler) prefillStep() {
	s.resetStep()
	budget := s.e.opts.PrefillChunk
	var jobs []*job
	for _, j := range s.prefilling {
		if budget == 0 {
			break
		}
		n := min(len(j.req.Prompt)-j.prefilled, budget)
		budget -= n
		s.addRow(j.seqs[0], j.req.Prompt[j.prefilled:j.prefilled+n])
		jobs = append(jobs, j)
	}
	s.e.prefillSteps.Add(1)
	if err := s.step(); err != nil {
		for _, j := range jobs {
			s.fail(j, err)
		}
		return
	}
	var ready []pick
	for row, j := range jobs {
		j.prefilled += int(s.in.NTokens[row])
		if j.prefilled < len(j.req.Prompt) {
			continue
		}
		if err := s.fork(j); err != nil {
			s.fail(j, err)
			continue
		}
		s.prefilling = slices.DeleteFunc(s.prefilling, func(x *job) bool { return x == j })
		for _, q := range j.seqs { // every candidate samples from the prompt's row
			ready = append(ready, pick{q, row})
		}
	}
	s.sampleAll(ready)
}

// fork copies the prompt's cache from the first candidate to the others.
func (s *scheduler) fork(j *job) error {
	for _, q := range j.seqs[1:] {
		if err := s.e.model.CopySlot(j.seqs[0].slot, q.slot); err != nil {
			return err
		}
	}
	return nil
}

// decodeStep feeds every decoding sequence its last token, in one step.
func (s *scheduler) decodeStep() {
	s.resetStep()
	slices.SortFunc(s.decoding, func(a, b *sequence) int { return a.slot - b.slot })
	for _, q := range s.decoding {
		s.addRow(q, []int{q.last()})
	}
	s.e.decodeSteps.Add(1)
	s.e.decodeRows.Add(int64(len(s.decoding)))
	if err := s.step(); err != nil {
		for _, q := range slices.Clone(s.decoding) {
			if !q.done {
				s.fail(q.job, err)
			}
		}
		return
	}
	picks := s.picks[:0]
	for row, q := range s.rows {
		picks = append(picks, pick{q, row})
	}
	s.picks = picks
	s.sampleAll(picks)
}

func (s *scheduler) resetStep() {
	s.in.Slots, s.in.NTokens, s.in.Tokens = s.in.Slots[:0], s.in.NTokens[:0], s.in.Tokens[:0]
	s.rows = s.rows[:0]
	s.out.K = 1
}

func (s *scheduler) addRow(q *sequence, tokens []int) {
	s.in.Slots = append(s.in.Slots, int32(q.slot))
	s.in.NTokens = append(s.in.NTokens, int32(len(tokens)))
	for _, t := range tokens {
		s.in.Tokens = append(s.in.Tokens, int64(t))
	}
	s.rows = append(s.rows, q)
	// Ask the device for as many candidates as the hungriest sampler wants;
	// rows whose sampler needs the full vocabulary fetch it afterwards.
	s.out.K = max(s.out.K, q.sampler.Wanted())
	for _, other := range q.job.seqs[1:] {
		s.out.K = max(s.out.K, other.sampler.Wanted())
	}
}

func (s *scheduler) step() error {
	if err := s.e.model.Step(s.in, &s.out); err != nil {
		return fmt.Errorf("model step: %w", err)
	}
	return nil
}

// pick is a sequence to sample and the row of the last step it samples from.
type pick struct {
	q   *sequence
	row int
}

// sampleAll picks the next token of each sequence from its row's
// candidates, fetching full logits once for the rows that need them.
func (s *scheduler) sampleAll(picks []pick) {
	var needFull []pick
	for _, p := range picks {
		err := s.sample(p.q, s.candidates(p.row))
		if errors.Is(err, sample.ErrNeedFullLogits) {
			needFull = append(needFull, p)
		} else if err != nil {
			s.fail(p.q.job, err)
		}
	}
	if len(needFull) == 0 {
		return
	}
	s.fullRows = s.fullRows[:0]
	for _, p := range needFull {
		s.fullRows = append(s.fullRows, int32(p.row))
	}
	full, fetchErr := s.e.model.Logits(s.fullRows, s.full)
	s.full = full
	vocab := s.e.model.Vocab()
	for i, p := range needFull {
		if p.q.done {
			continue
		}
		err := fetchErr // one sequence's error must not fail the others
		if err == nil {
			c := sample.Candidates{Logits: full[i*vocab : (i+1)*vocab], Full: true, LogSumExp: s.out.LSE[p.row]}
			err = s.sample(p.q, c)
		}
		if err != nil {
			s.fail(p.q.job, err)
		}
	}
}

// candidates views row i of the last step's output.
func (s *scheduler) candidates(i int) sample.Candidates {
	k := s.out.K
	if k <= 0 || k >= s.e.model.Vocab() {
		v := s.e.model.Vocab()
		return sample.Candidates{Logits: s.out.Logits[i*v : (i+1)*v], Full: true, LogSumExp: s.out.LSE[i]}
	}
	return sample.Candidates{IDs: s.out.IDs[i*k : (i+1)*k], Logits: s.out.Logits[i*k : (i+1)*k], LogSumExp: s.out.LSE[i]}
}

// sample draws q's next token and retires q when it is done.
func (s *scheduler) sample(q *sequence, c sample.Candidates) error {
	if q.done {
		return nil
	}
	if q.sampler.Wanted() == 0 && !c.Full {
		return sample.ErrNeedFullLogits
	}
	id, logprob, err := q.sampler.Next(q.ids, q.generated, c)
	if err != nil {
		return err
	}
	q.ids = append(q.ids, id)
	q.generated++
	q.logprob += logprob
	s.e.tokens.Add(1)
	if q.index == 0 && q.job.req.OnToken != nil {
		q.job.req.OnToken(q.generated)
	}
	switch {
	case slices.Contains(q.job.req.StopIDs, id):
		q.stopped = true
		s.retire(q)
	case q.generated >= q.job.req.Params.MaxNewTokens, len(q.ids) >= s.e.model.Capacity():
		s.retire(q)
	case q.generated == 1:
		s.decoding = append(s.decoding, q)
	}
	return nil
}

// retire frees a finished sequence's slot, or parks its cache when the
// request names a conversation; the job answers when all its candidates
// are done.
func (s *scheduler) retire(q *sequence) {
	q.done = true
	if q.job.req.CacheKey != "" {
		s.park(q)
	} else {
		s.release(q)
	}
	q.job.finished++
	if q.job.finished < len(q.job.seqs) {
		return
	}
	out := make([]Completion, len(q.job.seqs))
	for i, c := range q.job.seqs {
		out[i] = c.completion()
	}
	if q.job.req.CacheKey != "" {
		s.keepBestParked(q.job, out)
	}
	q.job.done <- jobResult{completions: out}
}

// release takes q out of the decode batch and frees its slot, if q still
// holds it: a finished candidate's slot may already serve another job.
func (s *scheduler) release(q *sequence) {
	s.decoding = slices.DeleteFunc(s.decoding, func(x *sequence) bool { return x == q })
	if !q.ownsSlot {
		return
	}
	q.ownsSlot = false
	s.freeSlot(q.slot)
}

// freeSlot empties a slot's cache and makes it available. A slot whose
// cache could not be reset stays out of use rather than leak one
// sequence's tokens into the next.
func (s *scheduler) freeSlot(slot int) {
	s.free[slot] = s.e.model.SetLength(slot, 0) == nil
	if !s.free[slot] {
		s.broken++
	}
}

// fail ends a job with err and frees all its slots.
func (s *scheduler) fail(j *job, err error) {
	if j.finished < 0 || (len(j.seqs) > 0 && j.finished == len(j.seqs)) {
		return // already answered: a second send could block the loop
	}
	for _, q := range j.seqs {
		q.done = true
		s.release(q)
	}
	s.prefilling = slices.DeleteFunc(s.prefilling, func(x *job) bool { return x == j })
	j.finished = -1
	j.done <- jobResult{err: err}
}

func (s *scheduler) failAll(err error) {
	s.dropParked(func(*parkedCache) bool { return true })
	for _, j := range s.waiting {
		j.done <- jobResult{err: err}
	}
	for _, j := range slices.Clone(s.prefilling) {
		s.fail(j, err)
	}
	for _, q := range slices.Clone(s.decoding) {
		s.fail(q.job, err)
	}
}
