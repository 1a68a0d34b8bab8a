package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"text/tabwriter"

	"github.com/dialogbot/dialogbot/internal/loader"
)

// Row is one device x concurrency measurement, as printed and as
// written to --json. Times are milliseconds, memory MiB.
type Row struct {
	Device       string  `json:"device"`
	Concurrency  int     `json:"concurrency"`
	Skipped      string  `json:"skipped,omitempty"` // why the device was not measured
	Requests     int     `json:"requests"`
	TokensPerS   float64 `json:"tokens_per_s"`
	P50ms        float64 `json:"p50_ms"`
	P95ms        float64 `json:"p95_ms"`
	MsPerToken   float64 `json:"ms_per_token"`
	TTFTP50ms    float64 `json:"ttft_p50_ms"`
	RowsPerStep  float64 `json:"rows_per_step"` // mean sequences per decode step
	DecodeSteps  int64   `json:"decode_steps"`
	PrefillSteps int64   `json:"prefill_steps"`
	WallS        float64 `json:"wall_s"`
	BridgeShare  float64 `json:"bridge_share"` // part of the wall time spent inside model calls
	PeakRSSMB    float64 `json:"peak_rss_mb"`
	GPUMemMB     float64 `json:"gpu_mem_mb"`
	// Part of the prompt tokens found in a conversation's cached prompt (--turns).
	ReusedShare float64 `json:"reused_prompt_share"`

	Model        string `json:"model"`
	Dtype        string `json:"dtype"`
	Threads      int    `json:"threads"`
	PromptTokens int    `json:"prompt_tokens"`
	NewTokens    int    `json:"new_tokens"`
	Turns        int    `json:"turns"` // requests per conversation
	Load         int    `json:"load"`  // busy threads beside the run (--load)
	BLAS         string `json:"blas"`
	Host         string `json:"host"`
	Date         string `json:"date"`

	// Set when --baseline has a greedy row of the same device and batch.
	BaselineImpl       string  `json:"baseline_impl,omitempty"`
	BaselineDtype      string  `json:"baseline_dtype,omitempty"`
	BaselineTokensPerS float64 `json:"baseline_tokens_per_s,omitempty"`
	BaselineMsPerToken float64 `json:"baseline_ms_per_token,omitempty"`
	Speedup            float64 `json:"speedup,omitempty"`            // our tokens/s over theirs
	MsPerTokenRatio    float64 `json:"ms_per_token_ratio,omitempty"` // their ms per token over ours
}

// Env is what every row of one run shares.
type Env struct {
	BLAS, Host, Date string
}

// fill adds the run's settings and environment to a measured row.
func (e Env) fill(r Row, cfg Config, lm *loader.Model) Row {
	r.Dtype = lm.Meta.Dtype
	if cfg.Dtype != "" && cfg.Dtype != "auto" {
		r.Dtype = cfg.Dtype
	}
	if q := lm.Meta.Quantize; q != "" && q != "none" {
		r.Dtype += "+" + q
	}
	return e.fillCommon(r, cfg)
}

func (e Env) fillCommon(r Row, cfg Config) Row {
	r.Model, r.Threads = cfg.Model, cfg.Threads
	if r.Threads <= 0 {
		r.Threads = runtime.NumCPU() // what openModel gives libtorch
	}
	r.PromptTokens, r.NewTokens, r.Turns, r.Load = cfg.PromptTokens, cfg.NewTokens, cfg.Turns, cfg.Load
	r.BLAS, r.Host, r.Date = e.BLAS, e.Host, e.Date
	return r
}

// skippedRows keep one row per device x concurrency in the output, so a
// reader sees why a device has no numbers rather than a missing row.
func skippedRows(cfg Config, dev string, env Env, reason string) []Row {
	rows := make([]Row, 0, len(cfg.Concurrency))
	for _, c := range cfg.Concurrency {
		r := Row{Device: dev, Concurrency: c, Skipped: reason, Dtype: cfg.Dtype}
		rows = append(rows, env.fillCommon(r, cfg))
	}
	return rows
}

func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "device\tchats\trequests\ttokens/s\tp50 ms\tp95 ms\tms/token\tTTFT p50 ms\treused\trows/step\tin bridge\tpeak RSS MiB\tGPU MiB\tbaseline tok/s\tspeedup\t")
	for _, r := range rows {
		if r.Skipped != "" {
			fmt.Fprintf(tw, "%s\t%d\t  skipped: %s\n", r.Device, r.Concurrency, r.Skipped)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.2f\t%.1f\t%s\t%.2f\t%.1f%%\t%.0f\t%s\t%s\t%s\t\n",
			r.Device, r.Concurrency, r.Requests, r.TokensPerS, r.P50ms, r.P95ms, r.MsPerToken, r.TTFTP50ms,
			orDash(100*r.ReusedShare, "%.0f%%"), r.RowsPerStep, 100*r.BridgeShare, r.PeakRSSMB, orDash(r.GPUMemMB, "%.0f"), orDash(r.BaselineTokensPerS, "%.1f"), orDash(r.Speedup, "%.2fx"))
	}
	return tw.Flush()
}

func orDash(x float64, format string) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf(format, x)
}

func WriteJSON(path string, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	b, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return fmt.Errorf("encode bench rows: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write --json: %w", err)
	}
	return nil
}

func HostName() string {
	h, err := os.Hostname()
	if err != nil {
		h = "unknown"
	}
	return fmt.Sprintf("%s (%s/%s, %d CPUs)", h, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
}
