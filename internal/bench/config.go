package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// Config is what `dialogbot bench` measures and how.
type Config struct {
	Model        string
	Devices      []string
	Concurrency  []int
	PromptTokens int
	NewTokens    int
	Requests     int // per concurrency level; 0: defaultRequests
	Warmup       int // per concurrency level; -1: default
	Dtype        string
	Threads      int
	Seed         uint64
	JSON         string
	Baseline     string
	Turns        int  // requests per conversation (1: independent requests)
	NoReuse      bool // conversations do not reuse their cached prompts
	Load         int  // busy threads competing for the CPU during the run
}

// context is the most tokens one request's cache must hold: the whole
// conversation by its last turn.
func (c Config) context() int { return c.Turns * (c.PromptTokens + c.NewTokens) }

// All measures every device in turn; a device this machine lacks
// gives skipped rows, so one command line works on CPU and GPU machines.
func All(ctx context.Context, cfg Config, env Env, stderr io.Writer, log *slog.Logger) ([]Row, error) {
	if cfg.Load > 0 {
		fmt.Fprintf(stderr, "bench: %d busy thread(s) compete for the CPU during the run (--load)\n", cfg.Load)
	}
	defer startLoad(cfg.Load)()
	var rows []Row
	for _, dev := range cfg.Devices {
		devRows, err := benchDevice(ctx, cfg, dev, env, stderr, log)
		var skip *deviceSkipped
		if errors.As(err, &skip) {
			fmt.Fprintf(stderr, "bench: skipping device %s: %s\n", dev, skip.reason)
			rows = append(rows, skippedRows(cfg, dev, env, skip.reason)...)
			continue
		}
		if err != nil {
			return rows, fmt.Errorf("device %s: %w", dev, err)
		}
		rows = append(rows, devRows...)
	}
	return rows, nil
}

// requestsAt is how many requests are measured at a concurrency: enough
// that p95 is not just the slowest one, and every client issues at least
// one. The default is whole rounds (a multiple of the concurrency): a last,
// partial round would run with fewer chats and lower tokens/s.
func (c Config) requestsAt(concurrency int) int {
	if c.Requests > 0 {
		return max(c.Requests, concurrency)
	}
	rounds := max(2, (20+concurrency-1)/concurrency)
	return rounds * concurrency
}

// warmupAt is how many unmeasured requests run first: TorchScript's
// profiling executor makes the first calls at each new shape slow.
func (c Config) warmupAt(concurrency int) int {
	if c.Warmup >= 0 {
		return c.Warmup
	}
	return max(3, concurrency)
}

// ErrBadConfig marks a configuration that cannot run on the loaded model
// (the command reports it as a usage error).
var ErrBadConfig = errors.New("bad bench configuration")
