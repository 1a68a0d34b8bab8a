package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// BaselineRow is one case measured by ../shared/bench/hf_generate_baseline.py
// (transformers `generate`, as the original bot called it).
type BaselineRow struct {
	Impl       string  `json:"impl"`
	Device     string  `json:"device"`
	Dtype      string  `json:"dtype"`
	Threads    int     `json:"threads"`
	Mode       string  `json:"mode"`
	Batch      int     `json:"batch"`
	NewTokens  int     `json:"new_tokens"`
	MedianMs   float64 `json:"median_ms"`
	MsPerToken float64 `json:"ms_per_token"`
	TokensPerS float64 `json:"tokens_per_s"`
}

// LoadBaseline reads the script's output: one JSON object per line, or
// the same objects as one JSON list.
func LoadBaseline(path string) ([]BaselineRow, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --baseline: %w", err)
	}
	rows, err := parseBaseline(b)
	if err != nil {
		return nil, fmt.Errorf("--baseline %s: %w", path, err)
	}
	return rows, nil
}

func parseBaseline(b []byte) ([]BaselineRow, error) {
	b = bytes.TrimSpace(b)
	var rows []BaselineRow
	if bytes.HasPrefix(b, []byte("[")) {
		if err := json.Unmarshal(b, &rows); err != nil {
			return nil, fmt.Errorf("json list: %w", err)
		}
	} else {
		for i, line := range bytes.Split(b, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var r BaselineRow
			if err := json.Unmarshal(line, &r); err != nil {
				return nil, fmt.Errorf("line %d: %w", i+1, err)
			}
			rows = append(rows, r)
		}
	}
	for i, r := range rows {
		if r.Device == "" || r.Batch < 1 || r.TokensPerS <= 0 {
			return nil, fmt.Errorf("case %d: needs device, batch >= 1 and tokens_per_s > 0", i+1)
		}
	}
	return rows, nil
}

// MatchBaseline adds to each measured row the ratios against the greedy
// baseline case of the same device with batch == concurrency, preferring
// the same dtype, then the same thread count.
func MatchBaseline(rows []Row, base []BaselineRow) {
	for i := range rows {
		r := &rows[i]
		if r.Skipped != "" {
			continue
		}
		b, ok := bestBaseline(*r, base)
		if !ok {
			continue
		}
		r.BaselineImpl, r.BaselineDtype, r.BaselineTokensPerS = b.Impl, b.Dtype, b.TokensPerS
		r.BaselineMsPerToken = b.msPerToken()
		r.Speedup = round2(r.TokensPerS / b.TokensPerS)
		if r.MsPerToken > 0 && r.BaselineMsPerToken > 0 {
			r.MsPerTokenRatio = round2(r.BaselineMsPerToken / r.MsPerToken)
		}
	}
}

func bestBaseline(r Row, base []BaselineRow) (BaselineRow, bool) {
	var best BaselineRow
	bestScore := -1
	for _, b := range base {
		if deviceKind(b.Device) != deviceKind(r.Device) || b.Batch != r.Concurrency || (b.Mode != "" && b.Mode != "greedy") {
			continue
		}
		score := 0
		if b.Dtype == r.Dtype {
			score += 2
		}
		if b.Threads == r.Threads {
			score++
		}
		if score > bestScore {
			best, bestScore = b, score
		}
	}
	return best, bestScore >= 0
}

// deviceKind drops the device index: the baseline says "cuda", a loaded
// module may say "cuda:0".
func deviceKind(dev string) string {
	kind, _, _ := strings.Cut(dev, ":")
	return kind
}

// msPerToken is the baseline's per-token time of one reply, computed from
// the median when the script did not write it.
func (b BaselineRow) msPerToken() float64 {
	if b.MsPerToken > 0 || b.NewTokens <= 0 {
		return b.MsPerToken
	}
	return round2(b.MedianMs / float64(b.NewTokens))
}
