package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/internal/loader"
	"github.com/dialogbot/dialogbot/model/engine"
	"github.com/dialogbot/dialogbot/model/sample"

	"github.com/dialogbot/dialogbot/torch"
)

// deviceSkipped says a device in the list is not present on this machine.
type deviceSkipped struct{ reason string }

func (e *deviceSkipped) Error() string { return "device skipped: " + e.reason }

// benchDevice loads the model once on dev, with a slot for every chat of
// the highest concurrency, and measures each concurrency level in turn.
func benchDevice(ctx context.Context, cfg Config, dev string, env Env, stderr io.Writer, log *slog.Logger) ([]Row, error) {
	if err := torch.Available(); err != nil {
		return nil, err // no bridge at all: nothing can be measured anywhere
	}
	if _, err := torch.ResolveDevice(dev); err != nil {
		return nil, &deviceSkipped{reason: err.Error()}
	}
	// The engine's stepper times the bridge calls, which tells the Go side's
	// cost per step apart from libtorch's.
	var timed *timedStepper
	opts := benchModelOptions(cfg, dev)
	opts.Instrument = func(m engine.Stepper) engine.Stepper {
		timed = &timedStepper{Stepper: m}
		return timed
	}
	lm, err := loader.Open(opts, log)
	if errors.Is(err, loader.ErrCPUOnly) {
		return nil, &deviceSkipped{reason: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	defer lm.Close()
	if info, err := lm.Module.RuntimeInfo(); err == nil {
		fmt.Fprintf(stderr, "libtorch on %s: %s\n", lm.Module.Device(), info)
	}
	fmt.Fprintf(stderr, "bench: weights %s: %s\n", lm.WeightsFile, lm.WeightsWhy)
	eng := lm.Engine
	if need := cfg.context(); lm.Module.Capacity() < need {
		return nil, fmt.Errorf("%w: --turns x (--prompt-tokens + --new-tokens) = %d, but the model's context is %d", ErrBadConfig, need, lm.Module.Capacity())
	}
	var rows []Row
	for _, c := range cfg.Concurrency {
		fmt.Fprintf(stderr, "bench: %s, %d concurrent: %d warm-up and %d measured requests\n", dev, c, cfg.warmupAt(c), cfg.requestsAt(c))
		row, err := benchLevel(ctx, eng, timed, lm.Meta.VocabSize, cfg, c)
		if err != nil {
			return nil, fmt.Errorf("concurrency %d: %w", c, err)
		}
		row.Device = lm.Module.Device()
		row.GPUMemMB = gpuMemoryMB(row.Device)
		rows = append(rows, env.fill(row, cfg, lm))
	}
	return rows, nil
}

// benchModelOptions sizes the KV cache to the benchmark: a slot per chat and
// only the context a request uses (256 full-length slots of GPT-2-small
// would take 19 GB).
func benchModelOptions(cfg Config, dev string) loader.Options {
	return loader.Options{Dir: cfg.Model, Device: config.Device(dev), Dtype: config.DType(cfg.Dtype), Threads: cfg.Threads,
		Slots: slices.Max(cfg.Concurrency), MaxContext: cfg.context()}
}

// benchLevel warms up, then measures one concurrency level.
func benchLevel(ctx context.Context, eng *engine.Engine, timed *timedStepper, vocab int, cfg Config, concurrency int) (Row, error) {
	prompts := promptSource{seed: cfg.Seed, vocab: vocab, n: cfg.PromptTokens}
	run := func(total int, part func(int) []int, keys string) ([]reqResult, error) {
		if cfg.Turns > 1 {
			return runConversations(ctx, eng, concurrency, total, cfg, part, keys)
		}
		return runClients(ctx, eng, concurrency, total, func(i int) engine.Request { return benchRequest(part(i), cfg.NewTokens) })
	}
	if n := cfg.warmupAt(concurrency); n > 0 {
		warm := func(i int) []int { return prompts.prompt(-1 - i) } // prompts unlike the measured ones
		if _, err := run(n, warm, "warm-up"); err != nil {
			return Row{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	resetPeakRSS()
	before, bridgeBefore := eng.Stats(), timed.total()
	start := time.Now()
	results, err := run(cfg.requestsAt(concurrency), prompts.prompt, "measured")
	wall := time.Since(start)
	if err != nil {
		return Row{}, err
	}
	if err := checkLengths(results, cfg.NewTokens); err != nil {
		return Row{}, err
	}
	row := summarizeLevel(results, wall, statsSince(before, eng.Stats()), concurrency, cfg.NewTokens)
	row.BridgeShare = math.Round(1000*float64(timed.total()-bridgeBefore)/float64(wall)) / 1000
	return row, nil
}

// runConversations runs total requests (rounded up to whole conversations)
// as conversations of cfg.Turns turns. A conversation stays on one client,
// turn after turn, like a chat waiting for each reply: turn t's prompt is
// turn t-1's prompt, its reply and the new part(c*turns+t).
func runConversations(ctx context.Context, eng *engine.Engine, clients, total int, cfg Config, part func(int) []int, keys string) ([]reqResult, error) {
	turns := cfg.Turns
	convs := (total + turns - 1) / turns
	results := make([]reqResult, 0, convs*turns)
	var mu sync.Mutex
	err := runClientsOver(ctx, clients, convs, func(ctx context.Context, c int) error {
		var prompt, reply []int
		for t := range turns {
			prompt = slices.Concat(prompt, reply, part(c*turns+t))
			req := benchRequest(prompt, cfg.NewTokens)
			if !cfg.NoReuse {
				req.CacheKey = fmt.Sprintf("%s %d", keys, c)
			}
			r, err := timeRequest(ctx, eng, req)
			if err != nil {
				return fmt.Errorf("conversation %d turn %d: %w", c, t, err)
			}
			reply = r.reply
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		}
		return nil
	})
	return results, err
}

// benchRequest is greedy with no stop ids, so every reply has exactly
// newTokens tokens, as the baseline's min_new_tokens makes its replies.
func benchRequest(prompt []int, newTokens int) engine.Request {
	return engine.Request{Prompt: prompt, Params: sample.SamplingParams{
		Greedy: true, Temperature: 1, TopP: 1, RepetitionPenalty: 1, MaxNewTokens: newTokens}}
}

// promptSource makes request i's prompt from its own seeded source, so the
// prompts do not depend on which client goroutine takes which request.
type promptSource struct {
	seed     uint64
	vocab, n int
}

// firstPlainID skips the special ids (end of text and the two speaker tags).
const firstPlainID = 3

func (p promptSource) prompt(i int) []int {
	r := rand.New(rand.NewPCG(p.seed, uint64(int64(i))))
	ids := make([]int, p.n)
	for j := range ids {
		ids[j] = firstPlainID + r.IntN(p.vocab-firstPlainID)
	}
	return ids
}

// reqResult is one measured request.
type reqResult struct {
	latency, ttft time.Duration
	reply         []int // the generated ids
}

// runClients runs total requests from `clients` goroutines, each issuing
// its next request as soon as its last one is answered. The first error
// stops all clients.
func runClients(ctx context.Context, eng *engine.Engine, clients, total int, mk func(int) engine.Request) ([]reqResult, error) {
	results := make([]reqResult, total)
	err := runClientsOver(ctx, clients, total, func(ctx context.Context, i int) error {
		r, err := timeRequest(ctx, eng, mk(i))
		if err != nil {
			return fmt.Errorf("request %d: %w", i, err)
		}
		results[i] = r
		return nil
	})
	return results, err
}

// runClientsOver runs work(0..n-1) from `clients` goroutines, each taking
// the next item when it is done with its last. The first error stops all.
func runClientsOver(ctx context.Context, clients, n int, work func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(clients, n) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				if err := work(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// timeRequest measures one request; the engine reports its first token
// through OnToken, from the engine's goroutine.
func timeRequest(ctx context.Context, eng *engine.Engine, req engine.Request) (reqResult, error) {
	var first atomic.Int64
	start := time.Now()
	req.OnToken = func(n int) {
		if n == 1 {
			first.Store(int64(time.Since(start)))
		}
	}
	out, err := eng.Generate(ctx, req)
	latency := time.Since(start)
	if err != nil {
		return reqResult{}, err
	}
	return reqResult{latency: latency, ttft: time.Duration(first.Load()), reply: out[0].IDs}, nil
}

// checkLengths catches replies cut short (a cache too small, a stop id),
// which would make tokens/s and ms per token incomparable with the baseline.
func checkLengths(results []reqResult, want int) error {
	for i, r := range results {
		if len(r.reply) != want {
			return fmt.Errorf("request %d generated %d tokens, want exactly %d", i, len(r.reply), want)
		}
	}
	return nil
}

func statsSince(before, after engine.EngineStats) engine.EngineStats {
	return engine.EngineStats{
		PrefillSteps: after.PrefillSteps - before.PrefillSteps,
		DecodeSteps:  after.DecodeSteps - before.DecodeSteps,
		DecodeRows:   after.DecodeRows - before.DecodeRows,
		Tokens:       after.Tokens - before.Tokens,
		PromptTokens: after.PromptTokens - before.PromptTokens,
		ReusedTokens: after.ReusedTokens - before.ReusedTokens,
	}
}

// gpuMemoryMB is the memory in use on a CUDA device (by every process on
// it), 0 on the CPU or when it cannot be read.
func gpuMemoryMB(device string) float64 {
	if !strings.HasPrefix(device, "cuda") {
		return 0
	}
	idx := 0
	if _, after, ok := strings.Cut(device, ":"); ok {
		idx, _ = strconv.Atoi(after)
	}
	used, _, err := torch.GPUMemory(idx)
	if err != nil {
		return 0
	}
	return round2(float64(used) / (1 << 20))
}

// timedStepper adds up the time spent in the model's calls (the bridge and
// libtorch); the rest of the wall time is the engine's and the clients'.
type timedStepper struct {
	engine.Stepper
	spent atomic.Int64 // nanoseconds
}

func (t *timedStepper) Step(in engine.StepInput, out *engine.StepOutput) error {
	defer t.since(time.Now())
	return t.Stepper.Step(in, out)
}

func (t *timedStepper) Logits(rows []int32, out []float32) ([]float32, error) {
	defer t.since(time.Now())
	return t.Stepper.Logits(rows, out)
}

func (t *timedStepper) since(start time.Time) { t.spent.Add(int64(time.Since(start))) }

func (t *timedStepper) total() time.Duration { return time.Duration(t.spent.Load()) }
