package dataset

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/tokenizer"

	"github.com/dialogbot/dialogbot/internal/testfile"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite ids and mask of testdata/prompt_golden.json with the shared ru tokenizer")

const goldenPath = "../../testdata/prompt_golden.json"

type goldenTurn struct {
	Speaker string `json:"speaker"`
	Text    string `json:"text"`
}

type goldenCase struct {
	Name        string       `json:"name"`
	Format      string       `json:"format"`
	Turns       []goldenTurn `json:"turns"`
	MaxTurns    int          `json:"max_turns"`
	MaxTokens   int          `json:"max_tokens"`
	PromptTurns int          `json:"prompt_turns"`
	PromptText  string       `json:"prompt_text"`
	Target      string       `json:"target"`
	TargetText  string       `json:"target_text"`
	IDs         []int        `json:"ids"`
	Mask        []int        `json:"mask"` // ints: a []uint8 would be base64 in JSON
}

type goldenFile struct {
	About     string       `json:"about"`
	Tokenizer string       `json:"tokenizer"`
	Cases     []goldenCase `json:"cases"`
}

func (c goldenCase) modelTurns(tb testing.TB) []dialog.Turn {
	out := make([]dialog.Turn, len(c.Turns))
	for i, t := range c.Turns {
		switch t.Speaker {
		case "user":
			out[i] = dialog.Turn{Speaker: dialog.User, Text: t.Text}
		case "bot":
			out[i] = dialog.Turn{Speaker: dialog.Bot, Text: t.Text}
		default:
			tb.Fatalf("%s: speaker %q", c.Name, t.Speaker)
		}
	}
	return out
}

func loadGolden(tb testing.TB) goldenFile {
	tb.Helper()
	var g goldenFile
	testfile.ReadJSON(tb, goldenPath, &g)
	if len(g.Cases) == 0 {
		tb.Fatal("no golden cases")
	}
	return g
}

// TestPromptGoldenText checks the hand-written texts against the format; it
// needs no tokenizer. The kept turns are the newest prompt_turns non-empty
// ones: nonEmpty and the cut are BuildPrompt's, checked with ids below.
func TestPromptGoldenText(t *testing.T) {
	for _, c := range loadGolden(t).Cases {
		t.Run(c.Name, func(t *testing.T) {
			f, err := dialog.ParseFormat(c.Format)
			if err != nil {
				t.Fatal(err)
			}
			var kept []dialog.Turn
			for _, turn := range c.modelTurns(t) {
				if turn.Text = strings.TrimSpace(turn.Text); turn.Text != "" {
					kept = append(kept, turn)
				}
			}
			if c.PromptTurns > len(kept) || c.PromptTurns > c.MaxTurns {
				t.Fatalf("prompt_turns %d of %d turns, max %d", c.PromptTurns, len(kept), c.MaxTurns)
			}
			if got := f.PromptText(kept[len(kept)-c.PromptTurns:]); got != c.PromptText {
				t.Errorf("PromptText\n got %q\nwant %q", got, c.PromptText)
			}
			if got := f.TargetText(c.Target); got != c.TargetText {
				t.Errorf("TargetText %q, want %q", got, c.TargetText)
			}
		})
	}
}

// TestPromptGolden checks the ids: BuildPrompt with the case's limits, then
// the target, give exactly ids, equal to encoding the texts, and the loss
// mask covers the target alone.
func TestPromptGolden(t *testing.T) {
	tok := sharedTokenizer(t)
	g := loadGolden(t)
	for i, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			f, _ := dialog.ParseFormat(c.Format)
			// max_tokens is the prompt's limit, so the context is it plus the new tokens.
			lim := Limits{Context: c.MaxTokens + 40, MaxNewTokens: 40, MaxTurns: c.MaxTurns}
			ids, promptLen, err := EncodeExample(tok, f, c.modelTurns(t), c.Target, lim)
			if err != nil {
				t.Fatal(err)
			}
			checkTextIsText(t, tok, c, ids, promptLen)
			var mask []int
			for _, m := range LossMask(len(ids), promptLen) {
				mask = append(mask, int(m))
			}
			if *updateGolden {
				g.Cases[i].IDs, g.Cases[i].Mask = ids, mask
				return
			}
			if !reflect.DeepEqual(ids, c.IDs) || !reflect.DeepEqual(mask, c.Mask) {
				t.Errorf("ids %v mask %v\nwant %v mask %v", ids, mask, c.IDs, c.Mask)
			}
		})
	}
	if *updateGolden {
		writeGolden(t, g)
	}
}

// checkTextIsText: the ids decode to the case's texts, and special ids
// appear only where the format puts a tag (one per prompt turn, the cue and
// the target's stop), never from what people wrote. Where the turns hold no
// special token, the ids are also those of encoding the whole text at once.
func checkTextIsText(t *testing.T, tok *tokenizer.Tokenizer, c goldenCase, ids []int, promptLen int) {
	t.Helper()
	if got := tok.Decode(ids[:promptLen]); got != c.PromptText {
		t.Errorf("prompt decodes to %q, want %q", got, c.PromptText)
	}
	if got := tok.Decode(ids[promptLen:]); got != c.TargetText {
		t.Errorf("target decodes to %q, want %q", got, c.TargetText)
	}
	tags := c.PromptTurns + 2 // ruDialoGPT: a tag per turn, the cue, the stop tag
	if c.Format == string(dialog.FormatDialoGPT) {
		tags = c.PromptTurns + 1 // an eos per turn and the stop eos
	}
	if n := countSpecial(tok, ids); n != tags {
		t.Errorf("%d special ids in %v, want %d (the format's tags only)", n, ids, tags)
	}
	if forged(c) {
		return
	}
	if want := tok.Encode(c.PromptText); !reflect.DeepEqual(ids[:promptLen], want) {
		t.Errorf("BuildPrompt ids %v, encoded prompt_text %v", ids[:promptLen], want)
	}
	if want := tok.Encode(c.TargetText); !reflect.DeepEqual(ids[promptLen:], want) {
		t.Errorf("target ids %v, encoded target_text %v", ids[promptLen:], want)
	}
}

// forged: a turn or the target writes a special token as text.
func forged(c goldenCase) bool {
	texts := []string{c.Target}
	for _, turn := range c.Turns {
		texts = append(texts, turn.Text)
	}
	for _, s := range texts {
		for _, special := range []string{dialog.EOS, dialog.TagFirst, dialog.TagSecond} {
			if strings.Contains(s, special) {
				return true
			}
		}
	}
	return false
}

func countSpecial(tok *tokenizer.Tokenizer, ids []int) int {
	n := 0
	for _, id := range ids {
		for _, special := range []string{dialog.EOS, dialog.TagFirst, dialog.TagSecond} {
			if sid, ok := tok.TokenID(special); ok && sid == id {
				n++
			}
		}
	}
	return n
}

func sharedTokenizer(tb testing.TB) *tokenizer.Tokenizer {
	tb.Helper()
	path := filepath.Join(sharedDir(tb), "tokenizers", "ru-tokenizer.json")
	tok, err := tokenizer.LoadTokenizer(path)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// writeGolden keeps the file readable: number arrays on one line.
func writeGolden(tb testing.TB, g goldenFile) {
	data, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	data = regexp.MustCompile(`\[\s*([0-9,\s]*?)\s*\]`).ReplaceAllFunc(data, func(m []byte) []byte {
		return regexp.MustCompile(`\s+`).ReplaceAll(m, nil)
	})
	if err := os.WriteFile(goldenPath, append(data, '\n'), 0o644); err != nil {
		tb.Fatal(err)
	}
}
