package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/sample"
)

// TextCodec is the tokenizer as the generator uses it.
type TextCodec interface {
	dialog.Encoder
	DecodeReply(ids []int) string
	TokenID(token string) (int, bool)
}

// GeneratorOptions say how replies are made.
type GeneratorOptions struct {
	Format     dialog.Format
	Limits     dialog.PromptLimits
	Params     sample.SamplingParams
	Candidates int    // sampled in one batch; the best by mean log-probability wins
	Seed       uint64 // 0: a random seed per reply; else reply i uses Seed+i
	Fallback   string // said when the model twice gives nothing usable
}

// Reply is a generated answer.
type Reply struct {
	Text     string
	Tokens   int  // generated tokens of the chosen candidate
	Fallback bool // the model gave nothing usable; Text is the fallback phrase
}

// Generator turns a dialogue into the bot's reply: prompt, candidates from
// the engine, the best of them as clean text.
type Generator struct {
	engine *Engine
	codec  TextCodec
	opts   GeneratorOptions
	stops  []int
	count  atomic.Uint64
}

// NewGenerator checks the options against the tokenizer.
func NewGenerator(e *Engine, codec TextCodec, o GeneratorOptions) (*Generator, error) {
	if err := o.Params.Validate(); err != nil {
		return nil, err
	}
	if o.Candidates <= 0 || o.Params.Greedy {
		o.Candidates = 1
	}
	g := &Generator{engine: e, codec: codec, opts: o}
	for _, s := range o.Format.StopStrings() {
		id, ok := codec.TokenID(s)
		if !ok {
			return nil, fmt.Errorf("tokenizer has no %q token, which the %s prompt format needs", s, o.Format)
		}
		g.stops = append(g.stops, id)
	}
	return g, nil
}

// Reply generates the bot's next turn after turns (the newest is the user's).
// A reply that decodes to nothing is retried once with another seed, then
// replaced by the fallback phrase. ErrPromptTooLong means the newest turn
// alone does not fit. conversation names the chat the turns come from, so
// the engine can reuse the cache of its last prompt ("": no reuse).
func (g *Generator) Reply(ctx context.Context, conversation string, turns []dialog.Turn) (Reply, error) {
	prompt, err := dialog.BuildPrompt(g.codec, g.opts.Format, turns, g.opts.Limits)
	if err != nil {
		return Reply{}, err
	}
	for try := 0; try < 2; try++ {
		r, err := g.generate(ctx, conversation, prompt)
		if err != nil || r.Text != "" {
			return r, err
		}
	}
	return Reply{Text: g.opts.Fallback, Fallback: true}, nil
}

func (g *Generator) generate(ctx context.Context, conversation string, prompt []int) (Reply, error) {
	out, err := g.engine.Generate(ctx, Request{
		Prompt: prompt, Params: g.opts.Params, Candidates: g.opts.Candidates, Seed: g.nextSeed(), StopIDs: g.stops,
		CacheKey: conversation,
	})
	if err != nil {
		return Reply{}, err
	}
	return pickReply(g.codec, out), nil
}

// pickReply keeps the candidate with the best mean log-probability among
// those that decode to some text (an empty Reply when none does).
func pickReply(codec TextCodec, out []Completion) Reply {
	best := Reply{}
	bestScore := 0.0
	for _, c := range out {
		text := codec.DecodeReply(c.IDs)
		if text != "" && (best.Text == "" || c.MeanLogProb > bestScore) {
			best, bestScore = Reply{Text: text, Tokens: len(c.IDs)}, c.MeanLogProb
		}
	}
	return best
}

func (g *Generator) nextSeed() uint64 {
	n := g.count.Add(1) - 1
	if g.opts.Seed == 0 {
		return rand.Uint64()
	}
	return g.opts.Seed + n
}
