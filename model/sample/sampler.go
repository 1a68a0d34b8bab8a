package sample

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// SamplingParams choose how the next token is picked. The sampling rules
// follow Hugging Face generate, in its order: logits processors (repetition
// penalty, no-repeat-ngram, min-new-tokens), then warpers (temperature, top-k,
// top-p), then a multinomial draw. Two deliberate deviations:
//   - stop ids are exempt from the repetition penalty and the no-repeat-ngram
//     bans: the prompt of a dialogue with history contains " @@ПЕРВЫЙ@@", and
//     HF's rule would then forbid the model ever to end its reply that way;
//   - Greedy is the plain argmax of the raw logits, the decoding the golden
//     outputs were made with: no penalties, bans, min-new-tokens or temperature.
type SamplingParams struct {
	Greedy            bool    // plain argmax over raw logits; no penalties, no temperature
	Temperature       float64 // > 0
	TopK              int     // 0 = off
	TopP              float64 // (0,1]; 1 = off
	RepetitionPenalty float64 // 1 = off; HF semantics (logit<0 ? *p : /p) over prompt+generated ids
	NoRepeatNgram     int     // 0 = off; HF's rule, over the generated ids only (see process)
	MinNewTokens      int     // stop ids are banned until this many tokens are generated
	MaxNewTokens      int     // the caller stops after this many (the sampler does not count)
}

// Validate checks the params; the sampling fields are checked only when they
// are used (not Greedy).
func (p SamplingParams) Validate() error {
	if p.MaxNewTokens < 1 {
		return fmt.Errorf("max new tokens must be at least 1, got %d", p.MaxNewTokens)
	}
	if p.MinNewTokens < 0 || p.MinNewTokens > p.MaxNewTokens {
		return fmt.Errorf("min new tokens must be in [0, %d], got %d", p.MaxNewTokens, p.MinNewTokens)
	}
	if p.Greedy {
		return nil
	}
	switch {
	case !(p.Temperature > 0) || math.IsInf(p.Temperature, 0):
		return fmt.Errorf("temperature must be a positive number, got %v", p.Temperature)
	case p.TopK < 0:
		return fmt.Errorf("top-k must be 0 (off) or positive, got %d", p.TopK)
	case !(p.TopP > 0 && p.TopP <= 1):
		return fmt.Errorf("top-p must be in (0, 1], got %v", p.TopP)
	case !(p.RepetitionPenalty > 0) || math.IsInf(p.RepetitionPenalty, 0):
		return fmt.Errorf("repetition penalty must be a positive number, got %v", p.RepetitionPenalty)
	case p.NoRepeatNgram < 0:
		return fmt.Errorf("no-repeat-ngram size must be 0 (off) or positive, got %d", p.NoRepeatNgram)
	}
	return nil
}

// minWanted is the fewest candidates asked of the device when sampling: a
// GPU top-k costs about the same for 64 as for 10, and the margin makes the
// full-logits fallback rare even when penalties push many candidates down.
const minWanted = 64

// errAllBanned is returned for a full row in which no token may be sampled.
var errAllBanned = errors.New("sampler: every token is banned")

// Sampler picks the next token of one sequence. It keeps scratch buffers
// between steps, so it is not safe for concurrent use.
type Sampler struct {
	p     SamplingParams
	rng   *rand.Rand
	stops []int // sorted, unique

	vals    []float64 // processed logits, one per row entry
	kept    []int     // row entries still in the running, best first
	heap    []float64 // kthLargest storage
	weights []float64 // exp(value - max) of each kept entry
	seen    []int     // sorted unique history ids, stops removed
	banned  []int     // no-repeat-ngram bans, stops removed
}

// NewSampler makes a sampler for one sequence. rng is its own seeded source
// (nil is allowed only for greedy); stopIDs are the ids that end a reply.
func NewSampler(p SamplingParams, rng *rand.Rand, stopIDs []int) *Sampler {
	stops := slices.Compact(slices.Sorted(slices.Values(stopIDs)))
	return &Sampler{p: p, rng: rng, stops: stops}
}

// Wanted is how many candidates to ask the device for: 1 for greedy, 0 when
// only the full logits give the exact answer (no top-k, so top-p or the draw
// spans the whole vocabulary; or a repetition penalty below 1, which raises
// logits, so a token outside the candidates could overtake them).
func (s *Sampler) Wanted() int {
	switch {
	case s.p.Greedy:
		return 1
	case s.p.TopK == 0, s.p.RepetitionPenalty < 1:
		return 0
	}
	return max(minWanted, 4*s.p.TopK)
}

// Next picks the next token. history is the prompt ids followed by the ids
// generated so far, the last generated of them. logprob is the model's own
// log-probability of the token (raw logit minus LogSumExp), which ranks
// sampled candidates by their mean. ErrNeedFullLogits (wrapped) asks for the
// row's full logits; nothing is drawn from the random source then.
func (s *Sampler) Next(history []int, generated int, c Candidates) (id int, logprob float64, err error) {
	if err := c.check(); err != nil {
		return 0, 0, err
	}
	var pos int
	if s.p.Greedy {
		pos = argmax(c)
	} else if pos, err = s.sample(history, generated, c); err != nil {
		return 0, 0, err
	}
	return c.id(pos), float64(c.Logits[pos]) - float64(c.LogSumExp), nil
}

// argmax is the entry of the largest raw logit, the smaller id on ties (as
// torch.argmax over a full row). With partial candidates it is exact for any
// K >= 1, since the device returned the largest.
func argmax(c Candidates) int {
	best := 0
	for i := 1; i < c.size(); i++ {
		v, b := c.Logits[i], c.Logits[best]
		if v > b || (v == b && c.id(i) < c.id(best)) {
			best = i
		}
	}
	return best
}

// sample runs processors, warpers and the draw, returning a row entry.
func (s *Sampler) sample(history []int, generated int, c Candidates) (int, error) {
	if s.rng == nil {
		return 0, errors.New("sampler: no random source for sampling")
	}
	if !c.Full && s.Wanted() == 0 {
		return 0, fmt.Errorf("%w: top-k off or repetition penalty below 1", ErrNeedFullLogits)
	}
	s.process(history, generated, c)
	if err := s.topK(c); err != nil {
		return 0, err
	}
	s.topP()
	return s.draw(), nil
}

// process fills s.vals with the raw logits after the processors and the
// temperature. Every processor only lowers a logit (with a penalty >= 1) and
// the temperature keeps the order, which is what makes partial rows exact.
func (s *Sampler) process(history []int, generated int, c Candidates) {
	s.vals = slices.Grow(s.vals[:0], c.size())[:c.size()]
	for i, v := range c.Logits {
		s.vals[i] = float64(v)
		if v != v {
			s.vals[i] = math.Inf(-1) // a NaN would poison the softmax
		}
	}
	if p := s.p.RepetitionPenalty; p != 1 {
		s.seen = s.withoutStops(append(s.seen[:0], history...))
		s.forEach(c, s.seen, func(i int) { s.vals[i] = penalize(s.vals[i], p) })
	}
	if n := s.p.NoRepeatNgram; n > 0 {
		// Only the reply's own n-grams: in a dialogue prompt "? " comes
		// before every tag, so HF's rule over the whole history bans the
		// space before the stop tag and the reply cannot end after a "?".
		reply := history[len(history)-min(generated, len(history)):]
		s.banned = s.withoutStops(appendNgramBans(s.banned[:0], reply, n))
		s.forEach(c, s.banned, func(i int) { s.vals[i] = math.Inf(-1) })
	}
	if generated < s.p.MinNewTokens {
		s.forEach(c, s.stops, func(i int) { s.vals[i] = math.Inf(-1) })
	}
	if t := s.p.Temperature; t != 1 {
		for i := range s.vals {
			s.vals[i] /= t
		}
	}
}

// penalize is HF's repetition penalty: it always moves the logit down for
// p > 1, dividing a positive logit and multiplying a negative one.
func penalize(v, p float64) float64 {
	if v < 0 {
		return v * p
	}
	return v / p
}

// appendNgramBans appends the tokens that would repeat an n-gram of ids:
// every token that followed an earlier occurrence of the last n-1 ids (HF's
// NoRepeatNGramLogitsProcessor, which looks at prompt and generated ids alike).
func appendNgramBans(dst, ids []int, n int) []int {
	if len(ids)+1 < n {
		return dst
	}
	prefix := ids[len(ids)-n+1:]
	for i := 0; i+n <= len(ids); i++ {
		if slices.Equal(ids[i:i+n-1], prefix) {
			dst = append(dst, ids[i+n-1])
		}
	}
	return dst
}

// withoutStops sorts ids, drops duplicates and drops the stop ids, which are
// exempt from the penalty and the bans (see SamplingParams).
func (s *Sampler) withoutStops(ids []int) []int {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	return slices.DeleteFunc(ids, func(id int) bool {
		_, stop := slices.BinarySearch(s.stops, id)
		return stop
	})
}

// forEach calls f with the row entry of every token of ids (sorted, unique)
// that the row holds: by index in a full row, by lookup in a partial one.
func (s *Sampler) forEach(c Candidates, ids []int, f func(i int)) {
	if c.Full {
		for _, id := range ids {
			if id >= 0 && id < c.size() {
				f(id)
			}
		}
		return
	}
	for i, id := range c.IDs {
		if _, ok := slices.BinarySearch(ids, int(id)); ok {
			f(i)
		}
	}
}

// topK fills s.kept with the row entries that survive the top-k warper (all
// finite ones when it is off) and s.weights with their unnormalised
// probabilities. Like HF it keeps every token that reaches the k-th largest
// value, ties included.
func (s *Sampler) topK(c Candidates) error {
	var err error
	if c.Full {
		err = s.topKFull(c)
	} else {
		err = s.topKPartial(c)
	}
	if err != nil {
		return err
	}
	s.weigh()
	return nil
}

// topKFull selects without sorting the vocabulary: the k-th largest value
// first (a heap), then one pass, then a sort of the few kept.
func (s *Sampler) topKFull(c Candidates) error {
	k, cut := s.p.TopK, math.Inf(-1)
	if k > 0 && k < len(s.vals) {
		s.heap = slices.Grow(s.heap[:0], k)
		cut = kthLargest(s.vals, k, s.heap)
	}
	s.keep(cut)
	if len(s.kept) == 0 {
		return errAllBanned
	}
	if k > 0 || s.p.TopP < 1 {
		s.sortKept(c)
	}
	return nil
}

// topKPartial is exact only when no token outside the candidates can reach
// the top k. Such a token's processed value is at most the smallest raw
// candidate logit (processors only lower logits) over the temperature, so
// the k-th best candidate must stay strictly above that bound; strictly,
// because an outside token equal to it would be kept as a tie.
func (s *Sampler) topKPartial(c Candidates) error {
	k := s.p.TopK
	s.keep(math.Inf(-1))
	s.sortKept(c)
	if len(s.kept) < k {
		return fmt.Errorf("%w: %d of %d candidates left, top-k %d", ErrNeedFullLogits, len(s.kept), c.size(), k)
	}
	kth := s.vals[s.kept[k-1]]
	if bound := float64(slices.Min(c.Logits)) / s.p.Temperature; !(kth > bound) {
		return fmt.Errorf("%w: top-k value %g not above the bound %g of unseen tokens", ErrNeedFullLogits, kth, bound)
	}
	n := k
	for n < len(s.kept) && s.vals[s.kept[n]] >= kth {
		n++
	}
	s.kept = s.kept[:n]
	return nil
}

// keep puts in s.kept every entry whose value is finite and at least cut.
func (s *Sampler) keep(cut float64) {
	s.kept = s.kept[:0]
	for i, v := range s.vals {
		if v >= cut && !math.IsInf(v, -1) {
			s.kept = append(s.kept, i)
		}
	}
}

// sortKept puts s.kept in the one walking order, best value first and the
// smaller id first on ties, so a partial and a full row draw the same token.
func (s *Sampler) sortKept(c Candidates) {
	slices.SortFunc(s.kept, func(a, b int) int {
		return byValueThenID(s.vals[a], s.vals[b], c.id(a), c.id(b))
	})
}

// weigh sets s.weights[j] = exp(value of s.kept[j] - the largest value).
func (s *Sampler) weigh() {
	top := math.Inf(-1)
	for _, i := range s.kept {
		top = max(top, s.vals[i])
	}
	s.weights = s.weights[:0]
	for _, i := range s.kept {
		s.weights = append(s.weights, math.Exp(s.vals[i]-top))
	}
}

// topP drops the tail of s.kept (sorted best first) whose probability mass,
// each token's own included, is at most 1-TopP, always keeping one token:
// HF's TopPLogitsWarper with min_tokens_to_keep 1.
func (s *Sampler) topP() {
	if s.p.TopP >= 1 {
		return
	}
	var total float64
	for _, w := range s.weights {
		total += w
	}
	n, tail := len(s.kept), 0.0
	for ; n > 1; n-- {
		if tail += s.weights[n-1] / total; tail > 1-s.p.TopP {
			break
		}
	}
	s.kept, s.weights = s.kept[:n], s.weights[:n]
}

// draw picks an entry of s.kept with probability proportional to its weight
// (the softmax of what is left) from a single uniform draw.
func (s *Sampler) draw() int {
	var total float64
	for _, w := range s.weights {
		total += w
	}
	u, acc := s.rng.Float64()*total, 0.0
	for j, w := range s.weights {
		if acc += w; u < acc {
			return s.kept[j]
		}
	}
	return s.kept[len(s.kept)-1] // u rounded up to total
}
