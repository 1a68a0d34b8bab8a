package dataset

import (
	"errors"
	"fmt"

	"github.com/dialogbot/dialogbot/model/dialog"
)

// Config of a Builder.
type Config struct {
	Format        dialog.Format
	Limits        Limits
	ValidFraction float64 // of the dialogues, the latest ones, for validation
	Preview       int     // how many examples preview.jsonl shows
}

// Stats is stats.json.
type Stats struct {
	Chats         int            `json:"chats"`
	Messages      int            `json:"messages"`
	Dialogues     int            `json:"dialogues"`
	Examples      int            `json:"examples"`
	TrainExamples int            `json:"train_examples"`
	ValidExamples int            `json:"valid_examples"`
	TrainTokens   int            `json:"train_tokens"`
	ValidTokens   int            `json:"valid_tokens"`
	TargetTokens  int            `json:"target_tokens"`
	Speakers      map[string]int `json:"speakers"` // target replies per speaker
	Skipped       map[string]int `json:"skipped"`  // messages and replies that gave no sample, by reason
	Dropped       map[string]int `json:"dropped"`  // samples that did not fit the context, by reason
}

// PreviewLine is one line of preview.jsonl: prompt+target is the text of the ids.
type PreviewLine struct {
	Prompt string `json:"prompt"`
	Target string `json:"target"`
}

// Builder tokenizes samples as they come, chat by chat, so that only token
// ids are kept, then splits them by time.
type Builder struct {
	enc      dialog.Encoder
	cfg      Config
	examples []Example
	preview  []PreviewLine
	stats    Stats
	spool    *spool // nil: ids stay in memory
}

// SpoolIDs keeps the examples' token ids in an unlinked temporary file in
// dir ("": the system's) instead of memory, for big inputs. The Result's
// Close releases it.
func (b *Builder) SpoolIDs(dir string) error {
	s, err := newSpool(dir)
	if err != nil {
		return err
	}
	b.spool = s
	return nil
}

func NewBuilder(enc dialog.Encoder, cfg Config) *Builder {
	return &Builder{enc: enc, cfg: cfg, stats: Stats{Speakers: map[string]int{}, Skipped: map[string]int{}, Dropped: map[string]int{}}}
}

// Skip counts a message or reply that gives no sample.
func (b *Builder) Skip(reason string) { b.stats.Skipped[reason]++ }

// Add tokenizes samples; those that do not fit are counted, not returned.
func (b *Builder) Add(samples []Sample) error {
	for _, s := range samples {
		ids, promptLen, err := EncodeExample(b.enc, b.cfg.Format, s.Context, s.Reply, b.cfg.Limits)
		switch {
		case errors.Is(err, dialog.ErrPromptTooLong):
			b.stats.Dropped["prompt_too_long"]++
			continue
		case errors.Is(err, ErrTargetTooLong):
			b.stats.Dropped["target_too_long"]++
			continue
		case err != nil:
			return fmt.Errorf("encoding a reply of %s: %w", s.Speaker, err)
		}
		u, err := toUint32(ids)
		if err != nil {
			return err
		}
		e := Example{Time: s.Time, Dialogue: s.Dialogue, Speaker: s.Speaker, IDs: u, PromptLen: promptLen}
		if b.spool != nil {
			if e.spoolOff, err = b.spool.add(u); err != nil {
				return err
			}
			e.IDs, e.spoolLen = nil, len(u)
		}
		b.examples = append(b.examples, e)
		b.addPreview(s, promptLen)
	}
	return nil
}

func (b *Builder) addPreview(s Sample, promptLen int) {
	if len(b.preview) >= b.cfg.Preview {
		return
	}
	kept := keptTurns(b.enc, b.cfg.Format, s.Context, promptLen)
	b.preview = append(b.preview, PreviewLine{Prompt: b.cfg.Format.PromptText(kept), Target: b.cfg.Format.TargetText(s.Reply)})
}

// Result is a finished dataset, ready to write.
type Result struct {
	Train, Valid []Example
	Stats        Stats
	Preview      []PreviewLine
	spool        *spool
}

// ids returns an example's token ids (dst is reused when they come from the spool).
func (r Result) ids(e Example, dst []uint32) ([]uint32, error) {
	if e.IDs != nil || r.spool == nil {
		return e.IDs, nil
	}
	return r.spool.read(e.spoolOff, e.spoolLen, dst)
}

// Close releases the spool file, if any.
func (r Result) Close() error {
	if r.spool == nil {
		return nil
	}
	return r.spool.close()
}

// Finish splits the examples by time and completes the stats with what
// reading the source counted.
func (b *Builder) Finish(read ReadStats) Result {
	train, valid, dialogues := SplitByTime(b.examples, b.cfg.ValidFraction)
	st := b.stats
	st.Chats, st.Messages, st.Dialogues = read.Chats, read.Messages, dialogues
	for k, v := range read.Skipped {
		st.Skipped[k] += v
	}
	st.Examples, st.TrainExamples, st.ValidExamples = len(b.examples), len(train), len(valid)
	for _, e := range b.examples {
		st.Speakers[e.Speaker]++
		st.TargetTokens += e.Len() - e.PromptLen
	}
	st.TrainTokens, st.ValidTokens = countTokens(train), countTokens(valid)
	return Result{Train: train, Valid: valid, Stats: st, Preview: b.preview, spool: b.spool}
}

func countTokens(ex []Example) int {
	n := 0
	for _, e := range ex {
		n += e.Len()
	}
	return n
}
