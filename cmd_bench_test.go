package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dialogbot/dialogbot/model/engine"

	"github.com/dialogbot/dialogbot/internal/fakemodel"
	"github.com/dialogbot/dialogbot/internal/loader"
	"github.com/dialogbot/dialogbot/internal/testmodel"
	"github.com/dialogbot/dialogbot/torch"
)

// TestBenchRowsPerDeviceAndConcurrency runs the command on tiny-gpt2 with a
// hand-written baseline: one row per device x concurrency, measured rows
// sane, CUDA skipped with its reason where there is no GPU, and the ratio
// taken against the greedy baseline case of the same batch.
func TestBenchRowsPerDeviceAndConcurrency(t *testing.T) {
	testmodel.RequireBridge(t)
	dir := testmodel.Export(t, "tiny-gpt2")
	out := filepath.Join(t.TempDir(), "bench.json")
	code, stdout, stderr := runWithInput(t, "", "bench", "--model", dir, "--device", "cpu,cuda",
		"--concurrency", "1,3", "--prompt-tokens", "5", "--new-tokens", "6", "--requests", "7", "--warmup", "2",
		"--threads", "1", "--json", out, "--baseline", filepath.Join("testdata", "bench", "baseline.jsonl"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "BLAS: ") || !strings.Contains(stderr, "intra-op threads") {
		t.Errorf("no libtorch runtime info on stderr: %q", stderr)
	}
	rows := readBenchRows(t, out)
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4 (2 devices x 2 concurrencies):\n%s", len(rows), stdout)
	}
	gpus, err := torch.CUDADevices()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Device == "cuda" && gpus == 0 {
			checkSkipped(t, r)
			continue
		}
		checkMeasured(t, r, 7, 6)
	}
	cpu1, cpu3 := rows[0], rows[1]
	if cpu1.Device != "cpu" || cpu1.Concurrency != 1 || cpu3.Concurrency != 3 {
		t.Fatalf("rows out of order: %+v", rows[:2])
	}
	if cpu1.BaselineTokensPerS != 50 || cpu1.Speedup != round2(cpu1.TokensPerS/50) || cpu1.MsPerTokenRatio != round2(20/cpu1.MsPerToken) {
		t.Errorf("batch 1 against the greedy float32 baseline (50 tokens/s, 20 ms/token): %+v", cpu1)
	}
	if cpu3.BaselineTokensPerS != 0 || cpu3.Speedup != 0 {
		t.Errorf("batch 3 has no baseline case, got %+v", cpu3)
	}
	if !strings.Contains(stdout, "tokens/s") || (gpus == 0 && !strings.Contains(stdout, "skipped")) {
		t.Errorf("table lacks the header or the skipped device:\n%s", stdout)
	}
}

// TestBenchConversations: with --turns each prompt grows by the last reply
// and a new part; the cached prompt is reused unless --no-reuse.
func TestBenchConversations(t *testing.T) {
	testmodel.RequireBridge(t)
	dir := testmodel.Export(t, "tiny-gpt2")
	run := func(extra ...string) benchRow {
		out := filepath.Join(t.TempDir(), "bench.json")
		args := append([]string{"bench", "--model", dir, "--device", "cpu", "--concurrency", "2", "--prompt-tokens", "4",
			"--new-tokens", "3", "--turns", "3", "--requests", "6", "--warmup", "0", "--threads", "1", "--json", out}, extra...)
		if code, _, stderr := runWithInput(t, "", args...); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		rows := readBenchRows(t, out)
		if len(rows) != 1 {
			t.Fatalf("%d rows, want 1", len(rows))
		}
		checkMeasured(t, rows[0], 6, 3)
		if rows[0].Turns != 3 {
			t.Errorf("turns %d, want 3", rows[0].Turns)
		}
		return rows[0]
	}
	// 2 conversations of prompts 4, 4+3+4 and 11+3+4 tokens (47 in all): turns 2 and 3
	// find all but the last reply token cached, 4+3-1 and 11+3-1 tokens (38 in all).
	if r := run(); r.ReusedShare != round2(2*float64(6+13)/float64(2*(4+11+18))) {
		t.Errorf("reused share %v, want %v", r.ReusedShare, round2(38.0/66))
	}
	if r := run("--no-reuse"); r.ReusedShare != 0 {
		t.Errorf("--no-reuse reused %v of the prompt tokens", r.ReusedShare)
	}
}

func readBenchRows(tb testing.TB, path string) []benchRow {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var rows []benchRow
	if err := json.Unmarshal(b, &rows); err != nil {
		tb.Fatalf("--json output: %v\n%s", err, b)
	}
	return rows
}

func checkSkipped(tb testing.TB, r benchRow) {
	tb.Helper()
	if !strings.Contains(r.Skipped, "CUDA") || r.TokensPerS != 0 {
		tb.Errorf("cuda row should be skipped with a reason naming CUDA: %+v", r)
	}
}

func checkMeasured(tb testing.TB, r benchRow, requests, newTokens int) {
	tb.Helper()
	switch {
	case r.Skipped != "":
		tb.Errorf("%s x %d skipped: %s", r.Device, r.Concurrency, r.Skipped)
	case r.Requests != requests:
		tb.Errorf("%d requests, want %d", r.Requests, requests)
	case !(r.TokensPerS > 0) || !(r.P50ms > 0) || r.P95ms < r.P50ms:
		tb.Errorf("tokens/s %v, p50 %v, p95 %v: want positive and p95 >= p50", r.TokensPerS, r.P50ms, r.P95ms)
	case !(r.TTFTP50ms > 0) || r.TTFTP50ms > r.P95ms:
		tb.Errorf("time to first token %v ms outside (0, p95 %v]", r.TTFTP50ms, r.P95ms)
	case !(r.RowsPerStep >= 1) || r.RowsPerStep > float64(r.Concurrency):
		tb.Errorf("%v rows per decode step at concurrency %d", r.RowsPerStep, r.Concurrency)
	case !(r.BridgeShare > 0) || r.BridgeShare > 1:
		tb.Errorf("share of time in the bridge %v, want in (0, 1]", r.BridgeShare)
	case r.DecodeSteps < int64(newTokens-1) || !(r.PeakRSSMB > 0):
		tb.Errorf("decode steps %d, peak RSS %v MiB", r.DecodeSteps, r.PeakRSSMB)
	case r.Dtype != "float32" || r.Threads != 1 || r.NewTokens != newTokens || r.BLAS == "" || r.Host == "" || r.Date == "":
		tb.Errorf("settings or environment missing: %+v", r)
	}
	// Both numbers are rounded to 0.01 from the unrounded p50.
	if want := r.P50ms / float64(newTokens); math.Abs(r.MsPerToken-want) > 0.011 {
		tb.Errorf("ms per token %v, want p50 / new tokens = %v", r.MsPerToken, want)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "none")
	badBaseline := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(badBaseline, []byte("{\"device\": \"cpu\", \"batch\": 1, \"tokens_per_s\": 5}\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"no model", []string{}, 2, "--model is required"},
		{"unknown flag", []string{"--model", dir, "--nope"}, 2, "flag provided but not defined"},
		{"extra argument", []string{"--model", dir, "extra"}, 2, "unexpected arguments"},
		{"unknown device", []string{"--model", dir, "--device", "cpu,tpu"}, 2, `unknown device "tpu"`},
		{"zero concurrency", []string{"--model", dir, "--concurrency", "1,0"}, 2, "positive integers"},
		{"word concurrency", []string{"--model", dir, "--concurrency", "many"}, 2, "positive integers"},
		{"no new tokens", []string{"--model", dir, "--new-tokens", "0"}, 2, "--new-tokens must be at least 1"},
		{"no turns", []string{"--model", dir, "--turns", "0"}, 2, "--turns must be at least 1"},
		{"negative requests", []string{"--model", dir, "--requests", "-1"}, 2, "--requests"},
		{"bad dtype", []string{"--model", dir, "--dtype", "int4"}, 2, "unknown --dtype"},
		{"missing baseline", []string{"--model", dir, "--baseline", filepath.Join(t.TempDir(), "no.jsonl")}, 1, "read --baseline"},
		{"bad baseline", []string{"--model", dir, "--baseline", badBaseline}, 1, "line 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runWithInput(t, "", append([]string{"bench"}, c.args...)...)
			if code != c.wantCode || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, c.wantCode, c.want)
			}
		})
	}
}

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
	base := []baselineRow{
		{Device: "cuda", Dtype: "float16", Mode: "greedy", Batch: 8, TokensPerS: 4000, MsPerToken: 2},
		{Device: "cuda", Dtype: "float32", Mode: "greedy", Batch: 8, TokensPerS: 1000, MsPerToken: 8},
		{Device: "cuda", Dtype: "float32", Mode: "card", Batch: 1, TokensPerS: 50, MsPerToken: 20},
		{Device: "cpu", Dtype: "float32", Mode: "greedy", Batch: 1, Threads: 16, TokensPerS: 90, MedianMs: 400, NewTokens: 40},
		{Device: "cpu", Dtype: "float32", Mode: "greedy", Batch: 1, Threads: 2, TokensPerS: 40, MedianMs: 1000, NewTokens: 40},
	}
	cases := []struct {
		name           string
		row            benchRow
		wantBase       float64
		wantSpeedup    float64
		wantMsPerRatio float64
	}{
		{"same dtype wins", benchRow{Device: "cuda:0", Concurrency: 8, Dtype: "float32", TokensPerS: 3000, MsPerToken: 4}, 1000, 3, 2},
		{"other dtype when alone", benchRow{Device: "cuda", Concurrency: 8, Dtype: "bfloat16", TokensPerS: 2000, MsPerToken: 4}, 4000, 0.5, 0.5},
		{"card mode ignored", benchRow{Device: "cuda", Concurrency: 1, Dtype: "float32", TokensPerS: 100, MsPerToken: 10}, 0, 0, 0},
		{"same threads wins, ms per token from median", benchRow{Device: "cpu", Concurrency: 1, Dtype: "float32", Threads: 2, TokensPerS: 80, MsPerToken: 12.5}, 40, 2, 2},
		{"other device", benchRow{Device: "cpu", Concurrency: 8, Dtype: "float32", TokensPerS: 80, MsPerToken: 12.5}, 0, 0, 0},
		{"skipped row", benchRow{Device: "cuda", Concurrency: 8, Skipped: "no GPU"}, 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows := []benchRow{c.row}
			matchBaseline(rows, base)
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
		cfg                    benchConfig
		concurrency            int
		wantRequests, wantWarm int
	}{
		{"defaults, one chat", benchConfig{Warmup: -1}, 1, 20, 3},
		{"defaults, many chats", benchConfig{Warmup: -1}, 64, 128, 64},
		{"defaults, whole rounds", benchConfig{Warmup: -1}, 8, 24, 8},
		{"requests raised to the concurrency", benchConfig{Requests: 5, Warmup: 0}, 8, 8, 0},
		{"explicit", benchConfig{Requests: 50, Warmup: 2}, 8, 50, 2},
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
	want := benchRow{Concurrency: 3, Requests: 3, TokensPerS: 15, P50ms: 200, P95ms: 300, MsPerToken: 20,
		TTFTP50ms: 20, RowsPerStep: 3, DecodeSteps: 9, PrefillSteps: 1, WallS: 2, PeakRSSMB: r.PeakRSSMB}
	if r != want {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
}

func TestBlasOf(t *testing.T) {
	info := "torch 1.13.0; intra-op threads 2; OpenMP; BLAS: /usr/lib/libopenblas.so; bridge: /x/libcbridge.so"
	if got := blasOf(info); got != "/usr/lib/libopenblas.so" {
		t.Errorf("blasOf = %q", got)
	}
	if got := blasOf("no blas here"); got != "unknown" {
		t.Errorf("blasOf without BLAS = %q", got)
	}
}

// BenchmarkDecodeStep times one batched decode step through the bridge, the
// cost that bounds `bench` (the engine's own share is under 1%): nano-ru by
// default, or the exported model in $DIALOGBOT_BENCH_MODEL (for example a
// GPT-2-small shape from export.py --random-shape gpt2-small).
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
