package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/sample"
)

// StepInput is one batched forward pass: row i continues the sequence in
// slot Slots[i] with NTokens[i] new tokens, all rows' tokens concatenated.
// Its fields match torch.StepInput, so the two convert into each other.
type StepInput struct {
	Slots   []int32
	NTokens []int32
	Tokens  []int64
}

// StepOutput receives per row the K largest logits and their ids, best
// first (K <= 0: the whole vocabulary, no ids), and the log-sum-exp of the
// row's logits. It matches torch.StepOutput.
type StepOutput struct {
	K      int
	Logits []float32
	IDs    []int32
	LSE    []float32
}

// Stepper is what the engine needs from a model: batched steps over a pool
// of KV-cache slots. torch.Module provides it (through a thin adapter in
// package main, since model never imports torch); tests use fakes.
type Stepper interface {
	Step(in StepInput, out *StepOutput) error
	// Logits copies the full logits of rows of the last step.
	Logits(rows []int32, out []float32) ([]float32, error)
	SetLength(slot, n int) error
	CopySlot(src, dst int) error
	Vocab() int
	Slots() int
	Capacity() int
}

// Request asks for Candidates continuations of one prompt.
type Request struct {
	Prompt     []int
	Params     sample.SamplingParams
	Candidates int    // sequences sampled from the prompt in one batch (default 1)
	Seed       uint64 // candidate i uses a PCG source seeded with (Seed, i)
	StopIDs    []int
	// CacheKey names the conversation the request continues ("" for none).
	// The engine then keeps the KV cache of each finished sequence parked in
	// its slot, and the next request with the same key starts from the
	// longest prefix it shares with one of them instead of running its whole
	// prompt again. Parked caches give way whenever a request needs a slot.
	CacheKey string
	// OnToken, when set, is called from the engine's goroutine after each
	// new token of candidate 0 (bench uses it for time to first token).
	OnToken func(generated int)
}

// Completion is one generated continuation.
type Completion struct {
	IDs         []int   // generated ids, without the stop id
	MeanLogProb float64 // mean of the model's log-probabilities of IDs (and the stop id)
	Stopped     bool    // ended with a stop id (not by the length limit)
}

// EngineOptions tune the scheduler.
type EngineOptions struct {
	// PrefillChunk bounds the prompt tokens run in one prefill step, so a
	// long prompt delays the decode steps of other chats by one chunk at a
	// time rather than all at once. Default 256.
	PrefillChunk int
	// QueueSize bounds requests waiting for a slot; more get ErrBusy. Default 1024.
	QueueSize int
}

var (
	ErrEngineClosed = errors.New("generation engine is closed")
	ErrBusy         = errors.New("generation engine is busy: too many requests waiting")
)

// EngineStats are counters for benchmarks and logs.
type EngineStats struct {
	PrefillSteps, DecodeSteps, DecodeRows, Tokens int64
	// PromptTokens counts prompt tokens asked for; ReusedTokens those of
	// them found in a parked cache (CacheKey), which no step had to run.
	PromptTokens, ReusedTokens int64
}

// RowsPerDecodeStep is how many sequences a decode step ran on average: how
// full the batches were.
func (s EngineStats) RowsPerDecodeStep() float64 {
	if s.DecodeSteps == 0 {
		return 0
	}
	return float64(s.DecodeRows) / float64(s.DecodeSteps)
}

// Engine runs continuous batching: one goroutine owns the model; requests
// from any number of chats wait for free slots; every decode step packs all
// active sequences into one batch; new requests join at the next step and
// finished ones leave at once.
type Engine struct {
	model    Stepper
	opts     EngineOptions
	requests chan *job
	quit     chan struct{}
	quitOnce sync.Once // Close may be called more than once, and concurrently
	stopped  chan struct{}

	prefillSteps, decodeSteps, decodeRows, tokens atomic.Int64
	promptTokens, reusedTokens                    atomic.Int64
}

// NewEngine starts the engine's loop; Close stops it.
func NewEngine(m Stepper, opts EngineOptions) *Engine {
	if opts.PrefillChunk <= 0 {
		opts.PrefillChunk = 256
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	e := &Engine{model: m, opts: opts, requests: make(chan *job, opts.QueueSize),
		quit: make(chan struct{}), stopped: make(chan struct{})}
	go newScheduler(e).run()
	return e
}

// Close stops the loop; requests in flight fail with ErrEngineClosed.
func (e *Engine) Close() {
	e.quitOnce.Do(func() { close(e.quit) })
	<-e.stopped
}

// Stats returns the counters so far.
func (e *Engine) Stats() EngineStats {
	return EngineStats{PrefillSteps: e.prefillSteps.Load(), DecodeSteps: e.decodeSteps.Load(),
		DecodeRows: e.decodeRows.Load(), Tokens: e.tokens.Load(),
		PromptTokens: e.promptTokens.Load(), ReusedTokens: e.reusedTokens.Load()}
}

// Generate runs a request to the end, or until ctx is done.
func (e *Engine) Generate(ctx context.Context, r Request) ([]Completion, error) {
	if err := e.check(&r); err != nil {
		return nil, err
	}
	j := &job{req: r, ctx: ctx, done: make(chan jobResult, 1)}
	select {
	case <-e.quit:
		return nil, ErrEngineClosed
	default:
	}
	select {
	case e.requests <- j:
	case <-e.quit:
		return nil, ErrEngineClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	default:
		return nil, ErrBusy
	}
	select {
	case res := <-j.done:
		return res.completions, res.err
	case <-e.stopped:
		// The loop has ended; a request it never took is failed here.
		select {
		case res := <-j.done:
			return res.completions, res.err
		default:
			return nil, ErrEngineClosed
		}
	case <-ctx.Done():
		return nil, ctx.Err() // the scheduler sees ctx too and frees the slots
	}
}

func (e *Engine) check(r *Request) error {
	if r.Candidates <= 0 {
		r.Candidates = 1
	}
	if r.Candidates > e.model.Slots() {
		return fmt.Errorf("%d candidates asked for, but the model has %d slots", r.Candidates, e.model.Slots())
	}
	if len(r.Prompt) == 0 {
		return errors.New("empty prompt")
	}
	if len(r.Prompt) >= e.model.Capacity() {
		return fmt.Errorf("%w: %d prompt tokens, the cache holds %d per sequence", dialog.ErrPromptTooLong, len(r.Prompt), e.model.Capacity())
	}
	vocab := e.model.Vocab()
	for _, id := range r.Prompt {
		if id < 0 || id >= vocab {
			return fmt.Errorf("prompt token id %d out of range 0..%d", id, vocab-1)
		}
	}
	return r.Params.Validate()
}

type jobResult struct {
	completions []Completion
	err         error
}

// job is a request inside the scheduler; its candidates share one prefill.
type job struct {
	req       Request
	ctx       context.Context
	done      chan jobResult
	seqs      []*sequence
	prefilled int // prompt tokens already in seqs[0]'s cache (some may come from a parked cache)
	finished  int
}

type sequence struct {
	job       *job
	index     int
	slot      int
	ids       []int // prompt + generated
	generated int
	logprob   float64
	sampler   *sample.Sampler
	done      bool
	stopped   bool
	ownsSlot  bool // false once the slot is freed or handed to a parked cache
}

func (s *sequence) last() int { return s.ids[len(s.ids)-1] }

// completion is the generated part, for the reply.
func (s *sequence) completion() Completion {
	gen := s.ids[len(s.job.req.Prompt):]
	n := max(1, s.generated)
	if s.stopped {
		gen = gen[:len(gen)-1]
	}
	return Completion{IDs: slices.Clone(gen), MeanLogProb: s.logprob / float64(n), Stopped: s.stopped}
}

// rng gives candidate i of a request its own deterministic random source.
func (j *job) rng(i int) *rand.Rand {
	return rand.New(rand.NewPCG(j.req.Seed, uint64(i)))
}
