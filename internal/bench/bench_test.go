package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dialogbot/dialogbot/model/engine"

	"github.com/dialogbot/dialogbot/internal/fakemodel"
	"github.com/dialogbot/dialogbot/internal/loader"
	"github.com/dialogbot/dialogbot/internal/testmodel"
)

func TestParseBaseline(t *testing.T) {
	line := func(dev string, batch int) string {
		return `{"impl": "transformers.generate", "device": "` + dev + `", "batch": ` + itoa(batch) + `, "tokens_per_s": 10}`
	}
	cases := []struct {
		name    string
		text    string
		batches []int
		wantErr string
	}{
		{"json lines", line("cpu", 1) + "\n\n" + line("cuda", 8) + "\n", []int{1, 8}, ""},
		{"json list", "[" + line("cpu", 1) + "," + line("cuda", 128) + "]", []int{1, 128}, ""},
		{"empty", "", nil, ""},
		{"bad line", line("cpu", 1) + "\n{oops\n", nil, "line 2"},
		{"missing batch", `{"device": "cpu", "tokens_per_s": 3}`, nil, "batch >= 1"},
		{"zero tokens/s", `{"device": "cpu", "batch": 1}`, nil, "tokens_per_s > 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, err := parseBaseline([]byte(c.text))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var batches []int
			for _, r := range rows {
				batches = append(batches, r.Batch)
			}
			if !slices.Equal(batches, c.batches) {
				t.Errorf("batches %v, want %v", batches, c.batches)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestMatchBaseline(t *testing.T) {
	base := []BaselineRow{
		{Device: "cuda", Dtype: "float16", Mode: "greedy", Batch: 8, TokensPerS: 4000, MsPerToken: 2},
		{Device: "cuda", Dtype: "float32", Mode: "greedy", Batch: 8, TokensPerS: 1000, MsPerToken: 8},
		{Device: "cuda", Dtype: "float32", Mode: "card", Batch: 1, TokensPerS: 50, MsPerToken: 20},
		{Device: "cpu", Dtype: "float32", Mode: "greedy", Batch: 1, Threads: 16, TokensPerS: 90, MedianMs: 400, NewTokens: 40},
		{Device: "cpu", Dtype: "float32", Mode: "greedy", Batch: 1, Threads: 2, TokensPerS: 40, MedianMs: 1000, NewTokens: 40},
	}
	cases := []struct {
		name           string
		row            Row
		wantBase       float64
		wantSpeedup    float64
		wantMsPerRatio float64
	}{
		{"same dtype wins", Row{Device: "cuda:0", Concurrency: 8, Dtype: "float32", TokensPerS: 3000, MsPerToken: 4}, 1000, 3, 2},
		{"other dtype when alone", Row{Device: "cuda", Concurrency: 8, Dtype: "bfloat16", TokensPerS: 2000, MsPerToken: 4}, 4000, 0.5, 0.5},
		{"card mode ignored", Row{Device: "cuda", Concurrency: 1, Dtype: "float32", TokensPerS: 100, MsPerToken: 10}, 0, 0, 0},
		{"same threads wins, ms per token from median", Row{Device: "cpu", Concurrency: 1, Dtype: "float32", Threads: 2, TokensPerS: 80, MsPerToken: 12.5}, 40, 2, 2},
		{"other device", Row{Device: "cpu", Concurrency: 8, Dtype: "float32", TokensPerS: 80, MsPerToken: 12.5}, 0, 0, 0},
		{"skipped row", Row{Device: "cuda", Concurrency: 8, Skipped: "no GPU"}, 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows := []Row{c.row}
			MatchBaseline(rows, base)
			r := rows[0]
			if r.BaselineTokensPerS != c.wantBase || r.Speedup != c.wantSpeedup || r.MsPerTokenRatio != c.wantMsPerRatio {
				t.Errorf("baseline %v, speedup %v, ms/token ratio %v; want %v, %v, %v",
					r.BaselineTokensPerS, r.Speedup, r.MsPerTokenRatio, c.wantBase, c.wantSpeedup, c.wantMsPerRatio)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	cases := []struct {
		name string
		xs   []float64
		p    float64
		want float64
	}{
		{"median of ten", xs, 50, 5},
		{"p95 of ten is the largest", xs, 95, 10},
		{"p0 is the smallest", xs, 0, 1},
		{"one value", []float64{3}, 95, 3},
		{"none", nil, 50, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := percentile(c.xs, c.p); got != c.want {
				t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
			}
		})
	}
	if !slices.Equal(xs, []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}) {
		t.Errorf("percentile sorted its input: %v", xs)
	}
}

func TestParseVmHWM(t *testing.T) {
	cases := []struct {
		name, text string
		want       int64
	}{
		{"present", "Name:\tx\nVmPeak:\t  900 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 1 kB\n", 123456},
		{"absent", "Name:\tx\nVmRSS:\t 1 kB\n", 0},
		{"empty value", "VmHWM:\n", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := parseVmHWM(bufio.NewScanner(strings.NewReader(c.text))); got != c.want {
				t.Errorf("got %d kB, want %d", got, c.want)
			}
		})
	}
}

func TestRequestsAndWarmupDefaults(t *testing.T) {
	cases := []struct {
		name                   string
		cfg                    Config
		concurrency            int
		wantRequests, wantWarm int
	}{
		{"defaults, one chat", Config{Warmup: -1}, 1, 20, 3},
		{"defaults, many chats", Config{Warmup: -1}, 64, 128, 64},
		{"defaults, whole rounds", Config{Warmup: -1}, 8, 24, 8},
		{"requests raised to the concurrency", Config{Requests: 5, Warmup: 0}, 8, 8, 0},
		{"explicit", Config{Requests: 50, Warmup: 2}, 8, 50, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.cfg.requestsAt(c.concurrency); got != c.wantRequests {
				t.Errorf("requests %d, want %d", got, c.wantRequests)
			}
			if got := c.cfg.warmupAt(c.concurrency); got != c.wantWarm {
				t.Errorf("warm-up %d, want %d", got, c.wantWarm)
			}
		})
	}
}

func TestPromptSourceIsSeededAndAvoidsSpecialIDs(t *testing.T) {
	p := promptSource{seed: 1, vocab: 5, n: 200}
	a := p.prompt(3)
	if !slices.Equal(a, p.prompt(3)) {
		t.Error("the same request index gave another prompt")
	}
	if slices.Equal(a, p.prompt(4)) {
		t.Error("two requests got the same prompt")
	}
	if lo, hi := slices.Min(a), slices.Max(a); lo != firstPlainID || hi != 4 {
		t.Errorf("ids in %d..%d, want %d..4 (no special ids, whole range used)", lo, hi, firstPlainID)
	}
}

// TestRunClientsKeepsChatsBusy runs the clients against the engine with a
// fake model: every request is answered once with its full length, and
// the clients keep that many sequences in each decode step.
func TestRunClientsKeepsChatsBusy(t *testing.T) {
	fm := fakemodel.New(50, 4, 64)
	fm.Delay = time.Millisecond
	eng := engine.NewEngine(fm, engine.EngineOptions{})
	defer eng.Close()
	p := promptSource{seed: 2, vocab: 50, n: 3}
	mk := func(i int) engine.Request { return benchRequest(p.prompt(i), 5) }
	results, err := runClients(context.Background(), eng, 4, 10, mk)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkLengths(results, 5); err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r.latency <= 0 || r.ttft <= 0 || r.ttft > r.latency {
			t.Errorf("request %d: latency %v, first token %v", i, r.latency, r.ttft)
		}
	}
	if fm.MaxRows != 4 {
		t.Errorf("at most %d rows in a step, want 4 (one per client)", fm.MaxRows)
	}
	if st := eng.Stats(); st.Tokens != 50 {
		t.Errorf("%d tokens generated, want 10 requests x 5", st.Tokens)
	}
}

func TestRunClientsStopsAtFirstError(t *testing.T) {
	fm := fakemodel.New(50, 2, 64)
	fm.FailStep = func(in engine.StepInput) bool { return len(in.Tokens) > 3 } // prefill of the 4-token prompt
	eng := engine.NewEngine(fm, engine.EngineOptions{})
	defer eng.Close()
	mk := func(i int) engine.Request { return benchRequest([]int{3, 4, 5, 6}, 2) }
	_, err := runClients(context.Background(), eng, 2, 6, mk)
	if err == nil || !strings.Contains(err.Error(), "fake model failure") {
		t.Errorf("err %v, want the model's failure", err)
	}
}

func TestCheckLengths(t *testing.T) {
	err := checkLengths([]reqResult{{reply: make([]int, 4)}, {reply: make([]int, 3)}}, 4)
	if err == nil || !strings.Contains(err.Error(), "request 1 generated 3 tokens") {
		t.Errorf("err %v, want request 1 named", err)
	}
	if err := checkLengths([]reqResult{{reply: make([]int, 4)}}, 4); err != nil {
		t.Error(err)
	}
}

func TestSummarizeLevel(t *testing.T) {
	results := []reqResult{
		{latency: 100 * time.Millisecond, ttft: 10 * time.Millisecond, reply: make([]int, 10)},
		{latency: 300 * time.Millisecond, ttft: 30 * time.Millisecond, reply: make([]int, 10)},
		{latency: 200 * time.Millisecond, ttft: 20 * time.Millisecond, reply: make([]int, 10)},
	}
	st := engine.EngineStats{DecodeSteps: 9, DecodeRows: 27, PrefillSteps: 1}
	r := summarizeLevel(results, 2*time.Second, st, 3, 10)
	want := Row{Concurrency: 3, Requests: 3, TokensPerS: 15, P50ms: 200, P95ms: 300, MsPerToken: 20,
		TTFTP50ms: 20, RowsPerStep: 3, DecodeSteps: 9, PrefillSteps: 1, WallS: 2, PeakRSSMB: r.PeakRSSMB}
	if r != want {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
}

func BenchmarkDecodeStep(b *testing.B) {
	testmodel.RequireBridge(b)
	dir := os.Getenv("DIALOGBOT_BENCH_MODEL")
	if dir == "" {
		dir = testmodel.Export(b, "nano-ru")
	}
	for _, batch := range []int{1, 8, 32} {
		b.Run("batch="+itoa(batch), func(b *testing.B) { benchDecodeStep(b, dir, batch) })
	}
}

func benchDecodeStep(b *testing.B, dir string, batch int) {
	const promptLen, capacity = 32, 72
	lm, err := loader.Open(loader.Options{Dir: dir, Device: "cpu", Slots: batch, MaxContext: capacity}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer lm.Close()
	st := loader.TorchStepper{Module: lm.Module}
	prefill, decode := engine.StepInput{}, engine.StepInput{}
	p := promptSource{seed: 1, vocab: lm.Meta.VocabSize, n: promptLen}
	for slot := range batch {
		prefill.Slots, decode.Slots = append(prefill.Slots, int32(slot)), append(decode.Slots, int32(slot))
		prefill.NTokens, decode.NTokens = append(prefill.NTokens, promptLen), append(decode.NTokens, 1)
		for _, id := range p.prompt(slot) {
			prefill.Tokens = append(prefill.Tokens, int64(id))
		}
		decode.Tokens = append(decode.Tokens, int64(firstPlainID+slot))
	}
	out := engine.StepOutput{K: 1}
	length := capacity // forces a prefill before the first decode step
	step := func() {
		if length == capacity { // refill the cache, untimed, when it is full
			b.StopTimer()
			for slot := range batch {
				if err := st.SetLength(slot, 0); err != nil {
					b.Fatal(err)
				}
			}
			if err := st.Step(prefill, &out); err != nil {
				b.Fatal(err)
			}
			length = promptLen
			b.StartTimer()
		}
		if err := st.Step(decode, &out); err != nil {
			b.Fatal(err)
		}
		length++
	}
	for range 5 { // TorchScript's profiling executor makes the first calls slow
		step()
	}
	b.ResetTimer()
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "tokens/s")
}
