package bench

import (
	"bufio"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dialogbot/dialogbot/model/engine"
)

// summarizeLevel turns one concurrency level's measured requests into a row
// (device and environment fields are filled by the caller).
func summarizeLevel(results []reqResult, wall time.Duration, st engine.EngineStats, concurrency, newTokens int) Row {
	latency := make([]float64, len(results))
	ttft := make([]float64, len(results))
	tokens := 0
	for i, r := range results {
		latency[i], ttft[i] = ms(r.latency), ms(r.ttft)
		tokens += len(r.reply)
	}
	p50 := percentile(latency, 50)
	row := Row{
		Concurrency: concurrency, Requests: len(results),
		TokensPerS: round2(float64(tokens) / wall.Seconds()),
		P50ms:      round2(p50), P95ms: round2(percentile(latency, 95)),
		MsPerToken:  round2(p50 / float64(newTokens)),
		TTFTP50ms:   round2(percentile(ttft, 50)),
		PeakRSSMB:   peakRSSMB(),
		WallS:       round2(wall.Seconds()),
		DecodeSteps: st.DecodeSteps, PrefillSteps: st.PrefillSteps,
	}
	if st.PromptTokens > 0 {
		row.ReusedShare = round2(float64(st.ReusedTokens) / float64(st.PromptTokens))
	}
	row.RowsPerStep = round2(st.RowsPerDecodeStep())
	return row
}

// percentile is the nearest-rank percentile (p in 0..100) of xs: always
// one of the measured values, and never lower for a higher p.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// peakRSSMB is the process's peak resident memory (VmHWM), 0 where
// /proc is missing.
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	return round2(float64(parseVmHWM(bufio.NewScanner(f))) / 1024)
}

// parseVmHWM finds "VmHWM:   123456 kB" and returns the kB.
func parseVmHWM(sc *bufio.Scanner) int64 {
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0
		}
		kb, _ := strconv.ParseInt(fields[0], 10, 64)
		return kb
	}
	return 0
}

// resetPeakRSS starts VmHWM again from the current RSS (Linux 4.0+), so
// each row's peak is its own, not the largest of the run so far. Without
// it the peak only grows, which still bounds the row's use from above.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
