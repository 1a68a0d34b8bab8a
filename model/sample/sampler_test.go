package sample

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// neutral turns every rule off, so a case switches on only the rule it tests.
func neutral(mod func(*SamplingParams)) SamplingParams {
	p := SamplingParams{Temperature: 1, TopP: 1, RepetitionPenalty: 1, MaxNewTokens: 10}
	if mod != nil {
		mod(&p)
	}
	return p
}

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// softmaxOf is the expected distribution: ids[i] gets softmax(vals)[i].
func softmaxOf(ids []int, vals []float64) map[int]float64 {
	var total float64
	for _, v := range vals {
		total += math.Exp(v)
	}
	out := make(map[int]float64, len(ids))
	for i, id := range ids {
		out[id] = math.Exp(vals[i]) / total
	}
	return out
}

// distribution runs the processors and warpers of Next on a row and returns
// the probability of every token left for the draw.
func distribution(tb testing.TB, p SamplingParams, stops, history []int, generated int, c Candidates) map[int]float64 {
	tb.Helper()
	s := NewSampler(p, seeded(1), stops)
	s.process(history, generated, c)
	if err := s.topK(c); err != nil {
		tb.Fatalf("topK: %v", err)
	}
	s.topP()
	var total float64
	for _, w := range s.weights {
		total += w
	}
	out := make(map[int]float64, len(s.kept))
	for j, i := range s.kept {
		out[c.id(i)] = s.weights[j] / total
	}
	return out
}

func assertDistribution(tb testing.TB, got, want map[int]float64) {
	tb.Helper()
	for id, w := range want {
		if g, ok := got[id]; !ok || math.Abs(g-w) > 1e-6 {
			tb.Errorf("p(%d) = %v (present %v), want %v", id, g, ok, w)
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			tb.Errorf("token %d kept with p=%v, want it cut", id, g)
		}
	}
}

var ln = math.Log

func TestSamplingRules(t *testing.T) {
	tests := []struct {
		name      string
		mod       func(*SamplingParams)
		stops     []int
		history   []int
		generated int
		logits    []float32
		want      map[int]float64
	}{
		{"no rule is plain softmax", nil, nil, nil, 0,
			[]float32{1, 0, -1}, softmaxOf([]int{0, 1, 2}, []float64{1, 0, -1})},
		{"temperature above 1 flattens", func(p *SamplingParams) { p.Temperature = 2 }, nil, nil, 0,
			[]float32{2, 0, -2}, softmaxOf([]int{0, 1, 2}, []float64{1, 0, -1})},
		{"temperature below 1 sharpens", func(p *SamplingParams) { p.Temperature = 0.5 }, nil, nil, 0,
			[]float32{1, 0}, softmaxOf([]int{0, 1}, []float64{2, 0})},
		{"top-k keeps the k best", func(p *SamplingParams) { p.TopK = 2 }, nil, nil, 0,
			[]float32{1, 4, 2, 3}, softmaxOf([]int{1, 3}, []float64{4, 3})},
		{"top-k keeps ties at the k-th value", func(p *SamplingParams) { p.TopK = 2 }, nil, nil, 0,
			[]float32{4, 3, 1, 3}, softmaxOf([]int{0, 1, 3}, []float64{4, 3, 3})},
		{"top-k larger than the vocabulary keeps all", func(p *SamplingParams) { p.TopK = 9 }, nil, nil, 0,
			[]float32{1, 0}, softmaxOf([]int{0, 1}, []float64{1, 0})},
		{"top-p cuts the tail", func(p *SamplingParams) { p.TopP = 0.7 }, nil, nil, 0,
			[]float32{float32(ln(0.5)), float32(ln(0.25)), float32(ln(0.125)), float32(ln(0.125))},
			map[int]float64{0: 2.0 / 3, 1: 1.0 / 3}},
		// Four equal tokens: the tail mass 0.5 equals 1-top_p and is cut
		// (HF removes cumulative <= 1-top_p); ties keep the smaller ids.
		{"top-p cut-off at a tie boundary", func(p *SamplingParams) { p.TopP = 0.5 }, nil, nil, 0,
			[]float32{0, 0, 0, 0}, map[int]float64{0: 0.5, 1: 0.5}},
		{"top-p keeps at least one token", func(p *SamplingParams) { p.TopP = 0.01 }, nil, nil, 0,
			[]float32{0, 3, 1}, map[int]float64{1: 1}},
		{"top-p of 1 is off", func(p *SamplingParams) { p.TopP = 1 }, nil, nil, 0,
			[]float32{0, -30}, softmaxOf([]int{0, 1}, []float64{0, -30})},
		{"top-p runs after temperature", func(p *SamplingParams) { p.TopP = 0.8; p.Temperature = 100 }, nil, nil, 0,
			[]float32{float32(ln(0.6)), float32(ln(0.3)), float32(ln(0.1))},
			softmaxOf([]int{0, 1, 2}, []float64{ln(0.6) / 100, ln(0.3) / 100, ln(0.1) / 100})},
		{"top-p sees the top-k renormalised", func(p *SamplingParams) { p.TopK = 2; p.TopP = 0.5 }, nil, nil, 0,
			[]float32{1, 1, 0, 0}, map[int]float64{0: 1}},
		{"repetition penalty divides a positive logit", func(p *SamplingParams) { p.RepetitionPenalty = 2 }, nil, []int{0}, 0,
			[]float32{2, 1}, map[int]float64{0: 0.5, 1: 0.5}},
		{"repetition penalty multiplies a negative logit", func(p *SamplingParams) { p.RepetitionPenalty = 2 }, nil, []int{0}, 0,
			[]float32{-1, -2}, map[int]float64{0: 0.5, 1: 0.5}},
		{"repetition penalty counts a repeated id once", func(p *SamplingParams) { p.RepetitionPenalty = 2 }, nil, []int{0, 0, 0}, 0,
			[]float32{2, 1}, map[int]float64{0: 0.5, 1: 0.5}},
		{"repetition penalty with temperature", func(p *SamplingParams) { p.RepetitionPenalty = 2; p.Temperature = 0.5 }, nil, []int{1}, 0,
			[]float32{1, 2}, map[int]float64{0: 0.5, 1: 0.5}},
		{"no-repeat-ngram 2 bans the repeated bigram", func(p *SamplingParams) { p.NoRepeatNgram = 2 }, nil, []int{5, 1, 5}, 3,
			[]float32{0, 0, 0, 0, 0, 0}, softmaxOf([]int{0, 2, 3, 4, 5}, []float64{0, 0, 0, 0, 0})},
		{"no-repeat-ngram 1 bans every seen token", func(p *SamplingParams) { p.NoRepeatNgram = 1 }, nil, []int{1, 3}, 2,
			[]float32{0, 0, 0, 0}, softmaxOf([]int{0, 2}, []float64{0, 0})},
		{"no-repeat-ngram 3 over the reply", func(p *SamplingParams) { p.NoRepeatNgram = 3 }, nil, []int{1, 2, 3, 4, 1, 2, 4, 1, 2}, 9,
			[]float32{0, 0, 0, 0, 0}, softmaxOf([]int{0, 1, 2}, []float64{0, 0, 0})},
		{"no-repeat-ngram ignores the prompt", func(p *SamplingParams) { p.NoRepeatNgram = 3 }, nil, []int{1, 2, 3, 4, 1, 2, 4, 1, 2}, 1,
			[]float32{0, 0, 0, 0, 0}, softmaxOf([]int{0, 1, 2, 3, 4}, []float64{0, 0, 0, 0, 0})},
		{"no-repeat-ngram 3 needs the whole prefix", func(p *SamplingParams) { p.NoRepeatNgram = 3 }, nil, []int{1, 2, 3, 2, 1}, 5,
			[]float32{0, 0, 0, 0}, softmaxOf([]int{0, 1, 2, 3}, []float64{0, 0, 0, 0})},
		{"no-repeat-ngram off on a short history", func(p *SamplingParams) { p.NoRepeatNgram = 3 }, nil, []int{1}, 1,
			[]float32{0, 0}, softmaxOf([]int{0, 1}, []float64{0, 0})},
		{"min new tokens bans stop ids", func(p *SamplingParams) { p.MinNewTokens = 2 }, []int{0, 2}, []int{3}, 1,
			[]float32{5, 1, 5, 1}, map[int]float64{1: 0.5, 3: 0.5}},
		{"min new tokens reached frees stop ids", func(p *SamplingParams) { p.MinNewTokens = 2 }, []int{0, 2}, []int{3, 3}, 2,
			[]float32{0, 0, 0, 0}, softmaxOf([]int{0, 1, 2, 3}, []float64{0, 0, 0, 0})},
		{"stop ids are exempt from the repetition penalty", func(p *SamplingParams) { p.RepetitionPenalty = 2 }, []int{0}, []int{0, 1}, 0,
			[]float32{2, 2}, softmaxOf([]int{0, 1}, []float64{2, 1})},
		{"stop ids are exempt from no-repeat-ngram", func(p *SamplingParams) { p.NoRepeatNgram = 2 }, []int{0}, []int{7, 0, 7, 1, 7}, 5,
			[]float32{0, 0, 0, 0, 0, 0, 0, 0}, softmaxOf([]int{0, 2, 3, 4, 5, 6, 7}, []float64{0, 0, 0, 0, 0, 0, 0})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := neutral(tt.mod)
			if err := p.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got := distribution(t, p, tt.stops, tt.history, tt.generated, TopKCandidates(tt.logits, 0))
			assertDistribution(t, got, tt.want)
		})
	}
}

func TestGreedy(t *testing.T) {
	logits := []float32{1, 5, 3, 5, -2}
	lse := logSumExp(logits)
	tests := []struct {
		name    string
		c       Candidates
		history []int
		wantID  int
	}{
		{"full row, ties to the smaller id", TopKCandidates(logits, 0), nil, 1},
		{"one candidate is enough", TopKCandidates(logits, 1), nil, 1},
		{"partial ties out of order", Candidates{IDs: []int32{3, 1}, Logits: []float32{5, 5}, LogSumExp: float32(lse)}, nil, 1},
		{"penalties, bans and min new tokens are ignored", TopKCandidates(logits, 0), []int{1, 4, 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := cardSampling()
			p.Greedy = true
			p.RepetitionPenalty, p.MinNewTokens = 100, 5
			s := NewSampler(p, nil, []int{1})
			id, lp, err := s.Next(tt.history, 0, tt.c)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if id != tt.wantID || math.Abs(lp-(5-lse)) > 1e-5 {
				t.Errorf("Next = %d, %v; want %d, %v", id, lp, tt.wantID, 5-lse)
			}
		})
	}
}

func TestLogprob(t *testing.T) {
	logits := []float32{1, 2, 3, 0.5}
	want := 2 - logSumExp(logits) // token 1 is the only one left after the bans
	p := neutral(func(p *SamplingParams) { p.NoRepeatNgram = 1 })
	for _, k := range []int{0, 3} {
		t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
			p.TopK = 1
			id, lp, err := NewSampler(p, seeded(3), nil).Next([]int{2, 0, 3}, 3, TopKCandidates(logits, k))
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if id != 1 || math.Abs(lp-want) > 1e-6 {
				t.Errorf("Next = %d, %v; want 1, %v", id, lp, want)
			}
		})
	}
}

func TestWanted(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*SamplingParams)
		want int
	}{
		{"default card", nil, 64},
		{"greedy", func(p *SamplingParams) { p.Greedy = true }, 1},
		{"large top-k", func(p *SamplingParams) { p.TopK = 50 }, 200},
		{"top-p without top-k", func(p *SamplingParams) { p.TopK = 0 }, 0},
		{"penalty below 1 raises logits", func(p *SamplingParams) { p.RepetitionPenalty = 0.9 }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := cardSampling()
			if tt.mod != nil {
				tt.mod(&p)
			}
			if got := NewSampler(p, seeded(1), nil).Wanted(); got != tt.want {
				t.Errorf("Wanted = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPartialCandidates(t *testing.T) {
	// Logits 10..6 of a vocabulary of 12, so unseen tokens are at most 6; 4 is the stop id.
	part := Candidates{IDs: []int32{10, 11, 3, 4, 5}, Logits: []float32{10, 9, 8, 7, 6}, LogSumExp: 11}
	tests := []struct {
		name      string
		mod       func(*SamplingParams)
		history   []int
		generated int
		wantErr   bool
		wantIDs   []int // the tokens the draw may give
	}{
		{"top-k inside the candidates", func(p *SamplingParams) { p.TopK = 2 }, nil, 1, false, []int{10, 11}},
		{"penalised but still above the bound", func(p *SamplingParams) { p.TopK = 2; p.RepetitionPenalty = 1.2 }, []int{10}, 1, false, []int{10, 11}},
		{"penalties push the k-th below the bound", func(p *SamplingParams) { p.TopK = 2; p.RepetitionPenalty = 2 }, []int{10, 11, 3, 4}, 1, true, nil},
		{"k-th equal to the bound is not exact", func(p *SamplingParams) { p.TopK = 5 }, nil, 1, true, nil},
		{"fewer candidates than top-k", func(p *SamplingParams) { p.TopK = 6 }, nil, 1, true, nil},
		{"all candidates banned", func(p *SamplingParams) { p.TopK = 1; p.NoRepeatNgram = 1; p.MinNewTokens = 5 }, []int{10, 11, 3, 5}, 4, true, nil},
		{"stop ids banned below min new tokens", func(p *SamplingParams) { p.TopK = 4; p.MinNewTokens = 1 }, nil, 0, true, nil},
		{"stop ids allowed after min new tokens", func(p *SamplingParams) { p.TopK = 4; p.MinNewTokens = 1 }, nil, 1, false, []int{10, 11, 3, 4}},
		{"top-k off needs the full row", func(p *SamplingParams) { p.TopK = 0; p.TopP = 0.5 }, nil, 1, true, nil},
		{"penalty below 1 needs the full row", func(p *SamplingParams) { p.TopK = 1; p.RepetitionPenalty = 0.5 }, nil, 1, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := seeded(7)
			id, _, err := NewSampler(neutral(tt.mod), rng, []int{4}).Next(tt.history, tt.generated, part)
			if tt.wantErr {
				if !errors.Is(err, ErrNeedFullLogits) {
					t.Fatalf("Next = %d, %v; want ErrNeedFullLogits", id, err)
				}
				if rng.Uint64() != seeded(7).Uint64() {
					t.Error("the random source was used by a step that asked for the full row")
				}
				return
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if !containsInt(tt.wantIDs, id) {
				t.Errorf("Next = %d, want one of %v", id, tt.wantIDs)
			}
		})
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestNextErrors(t *testing.T) {
	tests := []struct {
		name string
		rng  *rand.Rand
		c    Candidates
	}{
		{"empty row", seeded(1), Candidates{Full: true}},
		{"ids and logits differ in length", seeded(1), Candidates{IDs: []int32{1}, Logits: []float32{1, 2}}},
		{"negative id", seeded(1), Candidates{IDs: []int32{-1}, Logits: []float32{1}}},
		{"sampling without a random source", nil, TopKCandidates([]float32{1, 2}, 0)},
		{"every token banned", seeded(1), TopKCandidates([]float32{1, 2}, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := neutral(func(p *SamplingParams) { p.NoRepeatNgram = 1 })
			_, _, err := NewSampler(p, tt.rng, nil).Next([]int{0, 1}, 2, tt.c)
			if err == nil || errors.Is(err, ErrNeedFullLogits) {
				t.Errorf("Next error = %v, want a plain error", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*SamplingParams)
		wantErr bool
	}{
		{"default card", nil, false},
		{"greedy ignores the sampling fields", func(p *SamplingParams) { p.Greedy, p.Temperature, p.TopP = true, 0, 0 }, false},
		{"zero temperature", func(p *SamplingParams) { p.Temperature = 0 }, true},
		{"NaN temperature", func(p *SamplingParams) { p.Temperature = math.NaN() }, true},
		{"infinite temperature", func(p *SamplingParams) { p.Temperature = math.Inf(1) }, true},
		{"negative top-k", func(p *SamplingParams) { p.TopK = -1 }, true},
		{"zero top-p", func(p *SamplingParams) { p.TopP = 0 }, true},
		{"top-p above 1", func(p *SamplingParams) { p.TopP = 1.01 }, true},
		{"zero repetition penalty", func(p *SamplingParams) { p.RepetitionPenalty = 0 }, true},
		{"negative ngram size", func(p *SamplingParams) { p.NoRepeatNgram = -2 }, true},
		{"no new tokens", func(p *SamplingParams) { p.MaxNewTokens = 0 }, true},
		{"min above max", func(p *SamplingParams) { p.MinNewTokens = 41 }, true},
		{"negative min", func(p *SamplingParams) { p.MinNewTokens = -1 }, true},
		{"greedy still checks lengths", func(p *SamplingParams) { p.Greedy, p.MaxNewTokens = true, 0 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := cardSampling()
			if tt.mod != nil {
				tt.mod(&p)
			}
			if err := p.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// cardSampling is the sampling of ruDialoGPT's model card, which the
// shipped config uses (internal/config checks it); here it is test input.
func cardSampling() SamplingParams {
	return SamplingParams{Temperature: 1.2, TopK: 10, TopP: 0.95, RepetitionPenalty: 1.2,
		NoRepeatNgram: 2, MinNewTokens: 1, MaxNewTokens: 40}
}

func TestTopKCandidates(t *testing.T) {
	logits := []float32{0, 3, 1, 3, 2}
	tests := []struct {
		name    string
		k       int
		wantIDs []int32
		full    bool
	}{
		{"k 0 is the full row", 0, nil, true},
		{"k at the vocabulary size is the full row", 5, nil, true},
		{"sorted descending", 3, []int32{1, 3, 4}, false},
		{"ties at the cut go to the smaller id", 1, []int32{1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := TopKCandidates(logits, tt.k)
			if c.Full != tt.full || fmt.Sprint(c.IDs) != fmt.Sprint(tt.wantIDs) {
				t.Errorf("got Full %v IDs %v, want %v %v", c.Full, c.IDs, tt.full, tt.wantIDs)
			}
			for j, id := range c.IDs {
				if c.Logits[j] != logits[id] {
					t.Errorf("logit of %d = %v, want %v", id, c.Logits[j], logits[id])
				}
			}
			if want := math.Log(1 + 2*math.Exp(3) + math.E + math.Exp(2)); math.Abs(float64(c.LogSumExp)-want) > 1e-5 {
				t.Errorf("LogSumExp = %v, want %v", c.LogSumExp, want)
			}
		})
	}
}

// generate samples n tokens with a deterministic fake model and returns them.
func generate(tb testing.TB, p SamplingParams, seed uint64, n int) []int {
	tb.Helper()
	s := NewSampler(p, seeded(seed), []int{0})
	model := rand.New(rand.NewPCG(99, 99))
	var out []int
	for range n {
		id, _, err := s.Next(out, len(out), TopKCandidates(randomLogits(model, 50, 2), 0))
		if err != nil {
			tb.Fatalf("Next: %v", err)
		}
		out = append(out, id)
	}
	return out
}

func randomLogits(r *rand.Rand, n int, scale float64) []float32 {
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * scale)
	}
	return l
}

func TestSeededDeterminism(t *testing.T) {
	p := cardSampling()
	a, b, c := generate(t, p, 1, 40), generate(t, p, 1, 40), generate(t, p, 2, 40)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("same seed, different tokens:\n%v\n%v", a, b)
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Errorf("seeds 1 and 2 gave the same 40 tokens %v", a)
	}
}

func TestSamplingFrequencies(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*SamplingParams)
		logits []float32
		want   map[int]float64
	}{
		{"softmax", nil,
			[]float32{float32(ln(0.5)), float32(ln(0.3)), float32(ln(0.15)), float32(ln(0.05))},
			map[int]float64{0: 0.5, 1: 0.3, 2: 0.15, 3: 0.05}},
		{"temperature and top-k", func(p *SamplingParams) { p.Temperature = 2; p.TopK = 3 },
			[]float32{2, 0, -2, 1},
			softmaxOf([]int{0, 1, 3}, []float64{1, 0, 0.5})},
		{"top-p", func(p *SamplingParams) { p.TopP = 0.7 },
			[]float32{float32(ln(0.125)), float32(ln(0.25)), float32(ln(0.125)), float32(ln(0.5))},
			map[int]float64{3: 2.0 / 3, 1: 1.0 / 3}},
	}
	const draws = 40000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSampler(neutral(tt.mod), seeded(11), nil)
			counts := map[int]int{}
			for range draws {
				id, _, err := s.Next(nil, 1, TopKCandidates(tt.logits, 0))
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				counts[id]++
			}
			for id, n := range counts {
				if _, ok := tt.want[id]; !ok {
					t.Errorf("token %d drawn %d times, want never", id, n)
				}
			}
			for id, w := range tt.want {
				got := float64(counts[id]) / draws
				if tol := 4 * math.Sqrt(w*(1-w)/draws); math.Abs(got-w) > tol {
					t.Errorf("frequency of %d = %.4f, want %.4f ± %.4f", id, got, w, tol)
				}
			}
		})
	}
}

// TestPartialMatchesFull is the exactness property the engine relies on:
// asking for K candidates and falling back to the full row on
// ErrNeedFullLogits gives exactly the tokens and log-probabilities of
// sampling from full rows, for the same seed.
func TestPartialMatchesFull(t *testing.T) {
	variants := []struct {
		name string
		mod  func(*SamplingParams)
		ks   []int // K per step, cycled; 0 = s.Wanted()
	}{
		{"card", nil, []int{0, 12, 14}},
		{"top-k 1", func(p *SamplingParams) { p.TopK = 1 }, []int{1, 2, 3}},
		{"top-k 40, no top-p, ngram 3", func(p *SamplingParams) { p.TopK = 40; p.TopP = 1; p.NoRepeatNgram = 3 }, []int{0, 45}},
		{"strong penalty, min 5", func(p *SamplingParams) { p.RepetitionPenalty = 3; p.MinNewTokens = 5 }, []int{0, 11}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			p := cardSampling()
			if v.mod != nil {
				v.mod(&p)
			}
			var partial, fallback int
			for seed := range uint64(60) {
				pa, fb := comparePartialFull(t, p, seed, v.ks)
				partial, fallback = partial+pa, fallback+fb
			}
			t.Logf("%d steps exact from candidates, %d fell back to the full row", partial, fallback)
			if partial == 0 || fallback == 0 {
				t.Errorf("the property was not exercised both ways: %d partial, %d fallback", partial, fallback)
			}
		})
	}
}

// TestPartialTiesMatchFull: the device may return tied logits in any order;
// the draw must still walk them as a full row does (by id), or the same seed
// would give another token.
func TestPartialTiesMatchFull(t *testing.T) {
	logits := make([]float32, 30)
	for i := range logits {
		logits[i] = float32(i * 7 % 5) // the values 0..4, six tokens each
	}
	part := Candidates{LogSumExp: float32(logSumExp(logits))}
	for v := float32(4); v >= 2; v-- {
		for id := len(logits) - 1; id >= 0; id-- { // ties in descending id order
			if logits[id] == v {
				part.IDs, part.Logits = append(part.IDs, int32(id)), append(part.Logits, v)
			}
		}
	}
	p := neutral(func(p *SamplingParams) { p.TopK = 6 })
	for seed := range uint64(50) {
		want, _, err := NewSampler(p, seeded(seed), nil).Next(nil, 0, TopKCandidates(logits, 0))
		if err != nil {
			t.Fatalf("full: %v", err)
		}
		got, _, err := NewSampler(p, seeded(seed), nil).Next(nil, 0, part)
		if err != nil || got != want {
			t.Fatalf("seed %d: partial gave %d, %v; full gave %d", seed, got, err, want)
		}
	}
}

// comparePartialFull runs one sequence twice, from full rows and from partial
// ones, and fails at the first difference.
func comparePartialFull(tb testing.TB, p SamplingParams, seed uint64, ks []int) (partial, fallback int) {
	tb.Helper()
	const vocab = 300
	stops := []int{0, 1, 2}
	full, part := NewSampler(p, seeded(seed), stops), NewSampler(p, seeded(seed), stops)
	model := rand.New(rand.NewPCG(seed, 1))
	history := []int{1, 17, 40, 17, 33, 2}
	for step := range 30 {
		logits := repetitiveLogits(model, vocab, history)
		wantID, wantLP, err := full.Next(history, step, TopKCandidates(logits, 0))
		if err != nil {
			tb.Fatalf("seed %d step %d: full: %v", seed, step, err)
		}
		k := ks[step%len(ks)]
		if k == 0 {
			k = part.Wanted()
		}
		id, lp, err := part.Next(history, step, TopKCandidates(logits, k))
		if errors.Is(err, ErrNeedFullLogits) {
			fallback++
			id, lp, err = part.Next(history, step, TopKCandidates(logits, 0))
		} else {
			partial++
		}
		if err != nil || id != wantID || lp != wantLP {
			tb.Fatalf("seed %d step %d k %d: partial gave %d, %v, %v; full gave %d, %v", seed, step, k, id, lp, err, wantID, wantLP)
		}
		history = append(history, id)
	}
	return partial, fallback
}

// repetitiveLogits is a fake model that likes what it has already said, so
// the penalties and bans often reach into the candidates.
func repetitiveLogits(r *rand.Rand, vocab int, history []int) []float32 {
	l := randomLogits(r, vocab, 2)
	for _, id := range history[max(0, len(history)-8):] {
		l[id] += float32(r.Float64() * 6)
	}
	return l
}

func BenchmarkNext(b *testing.B) {
	const vocab = 50264
	logits := randomLogits(rand.New(rand.NewPCG(1, 2)), vocab, 3)
	history := make([]int, 100)
	for i := range history {
		history[i] = i * 37 % vocab
	}
	p := cardSampling()
	rows := map[string]Candidates{"K=64": TopKCandidates(logits, 64), "full-50264": TopKCandidates(logits, 0)}
	for _, name := range []string{"K=64", "full-50264"} {
		b.Run(name, func(b *testing.B) {
			s := NewSampler(p, seeded(1), []int{0, 1, 2})
			for b.Loop() {
				if _, _, err := s.Next(history, 10, rows[name]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
