package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/dialogbot/dialogbot/internal/bench"
	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/torch"
)

func init() {
	register("bench", "measure generation speed (latency, tokens/s, memory) per device and number of concurrent chats", runBench)
}

func runBench(ctx context.Context, args []string, s stdio) error {
	cfg, err := parseBenchFlags(args, s)
	if err != nil {
		return err
	}
	// Read the baseline before minutes of measuring, so a bad file fails fast.
	var base []bench.BaselineRow
	if cfg.Baseline != "" {
		if base, err = bench.LoadBaseline(cfg.Baseline); err != nil {
			return err
		}
	}
	// For the BLAS in use; the thread count is printed per device, from the
	// model's own thread, once it is loaded.
	info, err := torch.RuntimeInfo()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: slog.LevelWarn}))
	env := bench.Env{BLAS: strings.Join(info.BLAS, ", "), Host: bench.HostName(), Date: time.Now().UTC().Format(time.RFC3339)}
	rows, err := bench.All(ctx, cfg, env, s.err, log)
	if errors.Is(err, bench.ErrBadConfig) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if err != nil {
		return err
	}
	bench.MatchBaseline(rows, base)
	if err := bench.WriteTable(s.out, rows); err != nil {
		return err
	}
	if cfg.JSON != "" {
		return bench.WriteJSON(cfg.JSON, rows)
	}
	return nil
}

func parseBenchFlags(args []string, s stdio) (bench.Config, error) {
	var cfg bench.Config
	fs := newFlagSet("bench", s)
	fs.StringVar(&cfg.Model, "model", "", "exported model directory (required)")
	devices := fs.String("device", "cpu,cuda", "comma-separated devices (cpu, cuda, cuda:N); one not present here is reported as skipped")
	conc := fs.String("concurrency", "1,8,64,256", "comma-separated numbers of chats generating at once")
	fs.IntVar(&cfg.PromptTokens, "prompt-tokens", 32, "random prompt tokens per request")
	fs.IntVar(&cfg.NewTokens, "new-tokens", 40, "tokens generated per request (exactly: greedy, no stop token)")
	fs.IntVar(&cfg.Requests, "requests", 0, "measured requests per concurrency level (0: whole rounds of the concurrency, at least 2 and at least 20 requests)")
	fs.IntVar(&cfg.Warmup, "warmup", -1, "unmeasured warm-up requests per concurrency level, run at that concurrency (-1: max(3, concurrency); 0: none)")
	fs.StringVar(&cfg.Dtype, "dtype", "", "float32, float16 or bfloat16 (default: as exported)")
	fs.IntVar(&cfg.Threads, "threads", 0, "libtorch CPU threads (0: all cores)")
	fs.IntVar(&cfg.Load, "load", 0, "busy threads to run beside the measurement, like that many busy processes on a shared machine (0: none)")
	fs.IntVar(&cfg.Turns, "turns", 1, "requests per conversation: each prompt is the last one, its reply and --prompt-tokens new tokens, as a chat's history grows")
	fs.BoolVar(&cfg.NoReuse, "no-reuse", false, "with --turns: run every prompt whole instead of reusing the conversation's cached one (for comparison)")
	seed := fs.Uint64("seed", 1, "seed of the random prompts")
	fs.StringVar(&cfg.JSON, "json", "", "also write the rows as a JSON list to this file")
	fs.StringVar(&cfg.Baseline, "baseline", "", "JSON lines (or a JSON list) from ../shared/bench/hf_generate_baseline.py to compare with")
	if err := parseFlags(fs, args); err != nil {
		return cfg, err
	}
	cfg.Seed = *seed
	var err error
	if cfg.Devices, err = parseDevices(*devices); err != nil {
		return cfg, err
	}
	if cfg.Concurrency, err = parsePositiveList("concurrency", *conc); err != nil {
		return cfg, err
	}
	return cfg, validateBench(cfg)
}

func validateBench(c bench.Config) error {
	switch {
	case c.Model == "":
		return fmt.Errorf("%w: --model is required", errUsage)
	case c.PromptTokens < 1:
		return fmt.Errorf("%w: --prompt-tokens must be at least 1, got %d", errUsage, c.PromptTokens)
	case c.NewTokens < 1:
		return fmt.Errorf("%w: --new-tokens must be at least 1, got %d", errUsage, c.NewTokens)
	case c.Requests < 0:
		return fmt.Errorf("%w: --requests must not be negative, got %d", errUsage, c.Requests)
	case c.Warmup < -1:
		return fmt.Errorf("%w: --warmup must be -1 (default), 0 or positive, got %d", errUsage, c.Warmup)
	case c.Turns < 1:
		return fmt.Errorf("%w: --turns must be at least 1, got %d", errUsage, c.Turns)
	case c.Threads < 0:
		return fmt.Errorf("%w: --threads must not be negative, got %d", errUsage, c.Threads)
	case c.Load < 0:
		return fmt.Errorf("%w: --load must not be negative, got %d", errUsage, c.Load)
	}
	if _, err := config.ParseDType(c.Dtype); err != nil {
		return fmt.Errorf("%w: --dtype: %w", errUsage, err)
	}
	return nil
}

func parseDevices(list string) ([]string, error) {
	var out []string
	for _, d := range strings.Split(list, ",") {
		d = strings.TrimSpace(d)
		dev, err := config.ParseDevice(d)
		if err != nil || dev == config.DeviceAuto {
			// bench names what it measures: auto would measure one device twice
			return nil, fmt.Errorf("%w: unknown device %q in --device (want cpu, cuda or cuda:N)", errUsage, d)
		}
		out = append(out, d)
	}
	return out, nil
}

func parsePositiveList(name, list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: --%s wants positive integers separated by commas, got %q", errUsage, name, f)
		}
		out = append(out, n)
	}
	return out, nil
}
