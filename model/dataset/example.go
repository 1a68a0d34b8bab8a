package dataset

import (
	"errors"
	"fmt"
	"time"

	"github.com/dialogbot/dialogbot/model/dialog"
)

// Limits are those of serving: the prompt keeps at most MaxTurns turns and
// leaves MaxNewTokens of the Context for the reply.
type Limits struct {
	Context      int // the model's n_positions; 0: no limit
	MaxNewTokens int
	MaxTurns     int
}

func (l Limits) prompt() dialog.PromptLimits {
	lim := dialog.PromptLimits{MaxTurns: l.MaxTurns}
	if l.Context > 0 {
		lim.MaxTokens = l.Context - l.MaxNewTokens
	}
	return lim
}

// ErrTargetTooLong: the prompt, cut as serving cuts it, leaves too little of
// the context for the reply and its stop tag.
var ErrTargetTooLong = errors.New("reply does not fit in the context after the prompt")

// Example is a tokenized sample: the prompt ids then the target ids. The
// target (and so the loss) starts at PromptLen.
type Example struct {
	Time      time.Time
	Dialogue  int
	Speaker   string
	IDs       []uint32 // nil when the ids are in the builder's spool file
	PromptLen int

	spoolOff int64 // where the ids are in the spool, in ids
	spoolLen int
}

// Len is the number of token ids.
func (e Example) Len() int {
	if e.IDs != nil {
		return len(e.IDs)
	}
	return e.spoolLen
}

// EncodeExample builds an example's ids exactly as serving builds a prompt
// (dialog.BuildPrompt) followed by the encoded TargetText of the reply.
func EncodeExample(enc dialog.Encoder, f dialog.Format, ctx []dialog.Turn, reply string, lim Limits) ([]int, int, error) {
	prompt, err := dialog.BuildPrompt(enc, f, ctx, lim.prompt())
	if err != nil {
		return nil, 0, err
	}
	target := f.TargetIDs(enc, reply)
	if lim.Context > 0 && len(prompt)+len(target) > lim.Context {
		return nil, 0, fmt.Errorf("%w: prompt %d + reply %d tokens, context %d", ErrTargetTooLong, len(prompt), len(target), lim.Context)
	}
	return append(prompt, target...), len(prompt), nil
}

// LossMask is 1 on the target tokens (the reply and its stop tag), 0 on the prompt.
func LossMask(n, promptLen int) []uint8 {
	mask := make([]uint8, n)
	for j := promptLen; j < n; j++ {
		mask[j] = 1
	}
	return mask
}

// keptTurns finds the turns BuildPrompt kept for a prompt of promptLen ids
// (it cuts whole turns from the oldest), for the text preview.
func keptTurns(enc dialog.Encoder, f dialog.Format, ctx []dialog.Turn, promptLen int) []dialog.Turn {
	for k := range ctx {
		ids, err := dialog.BuildPrompt(enc, f, ctx[k:], dialog.PromptLimits{})
		if err == nil && len(ids) == promptLen {
			return ctx[k:]
		}
	}
	return ctx[len(ctx)-1:]
}

func toUint32(ids []int) ([]uint32, error) {
	out := make([]uint32, len(ids))
	for i, id := range ids {
		if id < 0 || int64(id) > 1<<32-1 {
			return nil, fmt.Errorf("token id %d out of uint32 range", id)
		}
		out[i] = uint32(id)
	}
	return out, nil
}
