package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/internal/bench"
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
	run := func(extra ...string) bench.Row {
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

func readBenchRows(tb testing.TB, path string) []bench.Row {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var rows []bench.Row
	if err := json.Unmarshal(b, &rows); err != nil {
		tb.Fatalf("--json output: %v\n%s", err, b)
	}
	return rows
}

func checkSkipped(tb testing.TB, r bench.Row) {
	tb.Helper()
	if !strings.Contains(r.Skipped, "CUDA") || r.TokensPerS != 0 {
		tb.Errorf("cuda row should be skipped with a reason naming CUDA: %+v", r)
	}
}

func checkMeasured(tb testing.TB, r bench.Row, requests, newTokens int) {
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
		{"negative load", []string{"--model", dir, "--load", "-1"}, 2, "--load must not be negative"},
		{"negative requests", []string{"--model", dir, "--requests", "-1"}, 2, "--requests"},
		{"bad dtype", []string{"--model", dir, "--dtype", "int4"}, 2, "--dtype: unknown dtype"},
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

// round2 is the rounding of the bench report.
func round2(x float64) float64 { return math.Round(x*100) / 100 }
