package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/engine"

	"github.com/dialogbot/dialogbot/internal/fakemodel"
)

// letters is a codec for tests: id i is the letter 'a'+i (ids 0-2 are the
// format's special tokens), so replies can be read back from ids.
type letters struct{ vocab int }

func (l letters) Encode(text string) []int {
	var ids []int
	for _, r := range text {
		if r >= 'a' && int(r-'a') < l.vocab {
			ids = append(ids, int(r-'a'))
		}
	}
	return ids
}

func (l letters) EncodeText(text string) []int { return l.Encode(text) }

func (l letters) DecodeReply(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		if id > 2 {
			b.WriteByte(byte('a' + id))
		}
	}
	return strings.TrimSpace(b.String())
}

func (l letters) TokenID(token string) (int, bool) {
	switch token {
	case dialog.EOS:
		return 0, true
	case dialog.TagFirst:
		return 1, true
	case dialog.TagSecond:
		return 2, true
	}
	return 0, false
}

func newGenerator(tb testing.TB, fm *fakemodel.Model, fallback string) *engine.Generator {
	tb.Helper()
	g, err := engine.NewGenerator(newEngine(tb, fm, engine.EngineOptions{}), letters{fm.VocabSize}, engine.GeneratorOptions{
		Format: dialog.FormatRuDialoGPT, Limits: dialog.PromptLimits{MaxTurns: 6, MaxTokens: 40},
		Params: greedyParams(8), Fallback: fallback, Seed: 1,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

func TestGeneratorRepliesWithTheModelsTokens(t *testing.T) {
	fm := fakemodel.New(26, 4, 64)
	g := newGenerator(t, fm, "hm")
	turns := []dialog.Turn{{Speaker: dialog.User, Text: "hello"}}
	r, err := g.Reply(context.Background(), "", turns)
	if err != nil {
		t.Fatal(err)
	}
	prompt, _ := dialog.BuildPrompt(letters{26}, dialog.FormatRuDialoGPT, turns, dialog.PromptLimits{MaxTokens: 40})
	stops := map[int]bool{0: true, 1: true, 2: true}
	want := letters{26}.DecodeReply(fakemodel.Greedy(prompt, 26, 8, stops))
	if r.Text != want || r.Fallback || want == "" {
		t.Errorf("reply %+v, want %q from the model", r, want)
	}
}

// TestGeneratorFallsBackAfterTwoEmptyReplies: a model whose first token is
// always a stop tag gives nothing twice, then the fallback phrase.
func TestGeneratorFallsBackAfterTwoEmptyReplies(t *testing.T) {
	fm := fakemodel.New(26, 4, 64)
	fm.Shape = func(logits []float32) { logits[1] = 100 } // @@ПЕРВЫЙ@@ always wins
	steps := fm.Steps
	r, err := newGenerator(t, fm, "hm").Reply(context.Background(), "", []dialog.Turn{{Speaker: dialog.User, Text: "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Text != "hm" || !r.Fallback {
		t.Errorf("reply %+v, want the fallback", r)
	}
	if fm.Steps-steps != 2 {
		t.Errorf("%d model steps, want 2 (one prefill per try)", fm.Steps-steps)
	}
}

func TestGeneratorRefusesAPromptTooLong(t *testing.T) {
	g := newGenerator(t, fakemodel.New(26, 4, 64), "hm")
	_, err := g.Reply(context.Background(), "", []dialog.Turn{{Speaker: dialog.User, Text: strings.Repeat("x", 100)}})
	if !errors.Is(err, dialog.ErrPromptTooLong) {
		t.Errorf("err %v, want ErrPromptTooLong", err)
	}
}

func TestNewGeneratorNeedsTheFormatsTokens(t *testing.T) {
	e := newEngine(t, fakemodel.New(26, 4, 64), engine.EngineOptions{})
	_, err := engine.NewGenerator(e, noTags{letters{26}}, engine.GeneratorOptions{Format: dialog.FormatRuDialoGPT, Params: greedyParams(4)})
	if err == nil || !strings.Contains(err.Error(), dialog.TagFirst) {
		t.Errorf("err %v, want one naming %s", err, dialog.TagFirst)
	}
}

type noTags struct{ letters }

func (noTags) TokenID(token string) (int, bool) { return 0, token == dialog.EOS }
