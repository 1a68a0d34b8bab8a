package engine_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/engine"
	"github.com/dialogbot/dialogbot/model/sample"

	"github.com/dialogbot/dialogbot/internal/fakemodel"
)

func greedyParams(maxNew int) sample.SamplingParams {
	return sample.SamplingParams{Greedy: true, Temperature: 1, TopP: 1, RepetitionPenalty: 1, MaxNewTokens: maxNew}
}

func newEngine(tb testing.TB, m engine.Stepper, opts engine.EngineOptions) *engine.Engine {
	tb.Helper()
	e := engine.NewEngine(m, opts)
	tb.Cleanup(e.Close)
	return e
}

func prompt(seed, n, vocab int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = (seed*31 + i*17) % vocab
	}
	return p
}

func TestEngineGreedyMatchesReference(t *testing.T) {
	cases := []struct {
		name      string
		promptLen int
		chunk     int
		maxNew    int
		stops     []int
	}{
		{"short", 3, 256, 10, nil},
		{"chunked prefill", 50, 8, 12, nil},
		{"stop token", 5, 256, 40, []int{3}},
		{"one token", 1, 256, 1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fm := fakemodel.New(97, 4, 128)
			e := newEngine(t, fm, engine.EngineOptions{PrefillChunk: c.chunk})
			p := prompt(7, c.promptLen, 97)
			stops := map[int]bool{}
			for _, s := range c.stops {
				stops[s] = true
			}
			got, err := e.Generate(context.Background(), engine.Request{Prompt: p, Params: greedyParams(c.maxNew), StopIDs: c.stops})
			if err != nil {
				t.Fatal(err)
			}
			want := fakemodel.Greedy(p, 97, c.maxNew, stops)
			if !slices.Equal(got[0].IDs, want) {
				t.Errorf("ids %v, want %v", got[0].IDs, want)
			}
			if len(want) < c.maxNew != got[0].Stopped {
				t.Errorf("stopped = %v with %d of %d tokens", got[0].Stopped, len(want), c.maxNew)
			}
			waitFree(t, fm)
		})
	}
}

// waitFree checks every slot is released once requests are answered.
func waitFree(tb testing.TB, fm *fakemodel.Model) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for len(fm.Used()) > 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("slots still in use: %v", fm.Used())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestEngineBatchesConcurrentRequests: many requests at once give each the
// same tokens as alone, and really share steps.
func TestEngineBatchesConcurrentRequests(t *testing.T) {
	fm := fakemodel.New(101, 16, 96)
	fm.Delay = time.Millisecond
	e := newEngine(t, fm, engine.EngineOptions{PrefillChunk: 16})
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := prompt(i, 3+i%20, 101)
			got, err := e.Generate(context.Background(), engine.Request{Prompt: p, Params: greedyParams(10 + i%7)})
			if err != nil {
				errs <- err
				return
			}
			if want := fakemodel.Greedy(p, 101, 10+i%7, nil); !slices.Equal(got[0].IDs, want) {
				errs <- fmt.Errorf("request %d: %v, want %v", i, got[0].IDs, want)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if fm.MaxRows < 2 {
		t.Errorf("never batched: at most %d rows per step", fm.MaxRows)
	}
	st := e.Stats()
	if st.DecodeRows <= st.DecodeSteps {
		t.Errorf("decode rows %d over %d steps: no batching", st.DecodeRows, st.DecodeSteps)
	}
	waitFree(t, fm)
}

func TestEngineCandidatesShareThePrefill(t *testing.T) {
	fm := fakemodel.New(50, 6, 64)
	e := newEngine(t, fm, engine.EngineOptions{})
	params := engine.CardSampling()
	params.MaxNewTokens = 8
	req := engine.Request{Prompt: prompt(3, 6, 50), Params: params, Candidates: 3, Seed: 42}
	a, err := e.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 3 {
		t.Fatalf("%d completions, want 3", len(a))
	}
	for i := range a {
		if !slices.Equal(a[i].IDs, b[i].IDs) || a[i].MeanLogProb != b[i].MeanLogProb {
			t.Errorf("candidate %d not reproducible with the same seed: %v vs %v", i, a[i], b[i])
		}
		if a[i].MeanLogProb >= 0 {
			t.Errorf("candidate %d mean log-prob %g, want < 0", i, a[i].MeanLogProb)
		}
	}
	waitFree(t, fm)
}

func TestEngineCancelFreesSlots(t *testing.T) {
	fm := fakemodel.New(50, 2, 1<<20)
	e := newEngine(t, fm, engine.EngineOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel from inside the generation, so it cannot finish first.
	req := engine.Request{Prompt: []int{1, 2}, Params: greedyParams(1 << 19), OnToken: func(n int) {
		if n == 5 {
			cancel()
		}
	}}
	if _, err := e.Generate(ctx, req); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	waitFree(t, fm)
	// The engine still serves.
	if _, err := e.Generate(context.Background(), engine.Request{Prompt: []int{1}, Params: greedyParams(3)}); err != nil {
		t.Fatal(err)
	}
}

func TestEngineModelErrorFailsOnlyThatStep(t *testing.T) {
	fm := fakemodel.New(50, 2, 64)
	fail := true
	fm.FailStep = func(engine.StepInput) bool { f := fail; fail = false; return f }
	e := newEngine(t, fm, engine.EngineOptions{})
	if _, err := e.Generate(context.Background(), engine.Request{Prompt: []int{1}, Params: greedyParams(3)}); err == nil {
		t.Fatal("no error from a failing step")
	}
	if _, err := e.Generate(context.Background(), engine.Request{Prompt: []int{1}, Params: greedyParams(3)}); err != nil {
		t.Fatalf("engine did not recover: %v", err)
	}
	waitFree(t, fm)
}

func TestEngineRejectsBadRequests(t *testing.T) {
	fm := fakemodel.New(50, 2, 8)
	e := newEngine(t, fm, engine.EngineOptions{})
	cases := []struct {
		name string
		req  engine.Request
		want error
	}{
		{"prompt over capacity", engine.Request{Prompt: make([]int, 8), Params: greedyParams(1)}, dialog.ErrPromptTooLong},
		{"too many candidates", engine.Request{Prompt: []int{1}, Params: greedyParams(1), Candidates: 3}, nil},
		{"token out of range", engine.Request{Prompt: []int{50}, Params: greedyParams(1)}, nil},
		{"empty prompt", engine.Request{Params: greedyParams(1)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.Generate(context.Background(), c.req)
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
}

func TestEngineCloseFailsWaitingAndLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	fm := fakemodel.New(50, 1, 100000)
	e := engine.NewEngine(fm, engine.EngineOptions{})
	done := make(chan error, 1)
	go func() {
		_, err := e.Generate(context.Background(), engine.Request{Prompt: []int{1}, Params: greedyParams(90000)})
		done <- err
	}()
	waitFor(t, "the request to start decoding", func() bool { return fm.StepCount() > 1 })
	// Close twice at once: both return, neither panics (run with -race).
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); e.Close() }()
	}
	wg.Wait()
	e.Close()
	if err := <-done; !errors.Is(err, engine.ErrEngineClosed) {
		t.Fatalf("err %v, want ErrEngineClosed", err)
	}
	if _, err := e.Generate(context.Background(), engine.Request{Prompt: []int{1}, Params: greedyParams(1)}); !errors.Is(err, engine.ErrEngineClosed) {
		t.Fatalf("after close: %v", err)
	}
	waitFor(t, "the engine's goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// waitFor polls cond until it holds; the bound only turns a hang into a
// failure, it is no speed requirement.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// BenchmarkEngineStep64 measures the scheduler's own cost per decode step
// with 64 active sequences, over a fake model whose step is nearly free.
func BenchmarkEngineStep64(b *testing.B) {
	const active = 64
	fm := fakemodel.New(64, active, 1<<20)
	e := engine.NewEngine(fm, engine.EngineOptions{})
	defer e.Close()
	steps := b.N/1 + 1
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := 0; i < active; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := e.Generate(context.Background(), engine.Request{Prompt: []int{i % 64}, Params: greedyParams(steps)}); err != nil {
				b.Error(err)
			}
		}(i)
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(e.Stats().DecodeRows)/float64(e.Stats().DecodeSteps), "rows/step")
}
