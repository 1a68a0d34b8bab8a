package dataset

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dialogbot/dialogbot/model/dialog"

	"github.com/dialogbot/dialogbot/internal/testfile"
)

// buildFixture runs the whole pipeline on a Telegram fixture with the fake encoder.
func buildFixture(tb testing.TB, fixture string, lim Limits) Result {
	tb.Helper()
	b := NewBuilder(runeEncoder{}, Config{Format: dialog.FormatRuDialoGPT, Limits: lim, ValidFraction: 0.5, Preview: 2})
	next := 0
	read, err := ReadTelegram(openFixture(tb, fixture), TelegramOptions{}, func(c Chat) error {
		var s []Sample
		s, next = Samples(c.Messages, DialogueOptions{Gap: 30 * time.Minute, MaxTurns: 6}, next, b.Skip)
		return b.Add(s)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b.Finish(read)
}

func TestBuilderStats(t *testing.T) {
	res := buildFixture(t, "single_new.json", Limits{Context: 512, MaxNewTokens: 40})
	st := res.Stats
	want := Stats{Chats: 1, Messages: 9, Dialogues: 2, Examples: 5, TrainExamples: 3, ValidExamples: 2,
		Speakers: map[string]int{"Аня": 2, "Борис": 2, "Вика": 1},
		Skipped:  map[string]int{"service": 1, "forwarded": 1, "media": 1, "no_context": 2},
		Dropped:  map[string]int{}}
	want.TrainTokens, want.ValidTokens, want.TargetTokens = st.TrainTokens, st.ValidTokens, st.TargetTokens
	if !reflect.DeepEqual(st, want) {
		t.Errorf("stats\n got %+v\nwant %+v", st, want)
	}
	if st.TrainTokens != countTokens(res.Train) || st.ValidTokens != countTokens(res.Valid) || st.TargetTokens == 0 {
		t.Errorf("token counts %+v", st)
	}
	wantPreview := PreviewLine{Prompt: "@@ПЕРВЫЙ@@ Привет всем! @@ВТОРОЙ@@", Target: " Привет, Аня\nкак дела? @@ПЕРВЫЙ@@"}
	if len(res.Preview) != 2 || res.Preview[0] != wantPreview {
		t.Errorf("preview %+v, want first %+v", res.Preview, wantPreview)
	}
}

func TestBuilderDropsWhatDoesNotFit(t *testing.T) {
	// 30 tokens of context, 10 for the reply: Аня's long reply (about 70
	// runes) cannot fit, and the short prompts lose their oldest turns.
	res := buildFixture(t, "single_new.json", Limits{Context: 30, MaxNewTokens: 10})
	if got := res.Stats.Dropped["target_too_long"]; got == 0 {
		t.Errorf("dropped %v, want target_too_long", res.Stats.Dropped)
	}
	for _, e := range append(res.Train, res.Valid...) {
		if len(e.IDs) > 30 || e.PromptLen > 20 {
			t.Errorf("example of %d tokens, prompt %d: over the limits", len(e.IDs), e.PromptLen)
		}
	}
}

func TestBuilderChannel(t *testing.T) {
	res := buildFixture(t, "channel.json", Limits{Context: 512, MaxNewTokens: 40})
	if res.Stats.Examples != 0 || res.Stats.Messages != 3 || len(res.Train)+len(res.Valid) != 0 {
		t.Errorf("channel gave %+v", res.Stats)
	}
}

func TestWriteDir(t *testing.T) {
	res := buildFixture(t, "single_new.json", Limits{Context: 512, MaxNewTokens: 40})
	dir := t.TempDir()
	meta := Meta{PromptFormat: "rudialogpt", Tokenizer: "tok.json", TokenizerSHA256: "00", VocabSize: 1 << 20, ContextLength: 512}
	if err := WriteDir(dir, res, meta); err != nil {
		t.Fatal(err)
	}
	for split, ex := range map[string][]Example{"train": res.Train, "valid": res.Valid} {
		tokens := readLE[uint32](t, filepath.Join(dir, split+".tokens.u32"))
		mask := readLE[uint8](t, filepath.Join(dir, split+".mask.u8"))
		offsets := readLE[uint64](t, filepath.Join(dir, split+".offsets.u64"))
		if len(offsets) != len(ex)+1 || offsets[0] != 0 || offsets[len(ex)] != uint64(len(tokens)) || len(mask) != len(tokens) {
			t.Fatalf("%s: %d tokens, %d mask, offsets %v for %d examples", split, len(tokens), len(mask), offsets, len(ex))
		}
		for i, e := range ex {
			lo, hi := offsets[i], offsets[i+1]
			if !reflect.DeepEqual(tokens[lo:hi], e.IDs) || !reflect.DeepEqual(mask[lo:hi], LossMask(len(e.IDs), e.PromptLen)) {
				t.Errorf("%s example %d differs", split, i)
			}
			// The loss ends on the stop tag, @@ПЕРВЫЙ@@ (id 1).
			if tokens[hi-1] != 1 || mask[hi-1] != 1 || mask[lo] != 0 {
				t.Errorf("%s example %d: last token %d mask %d", split, i, tokens[hi-1], mask[hi-1])
			}
		}
	}
	var got Meta
	testfile.ReadJSON(t, filepath.Join(dir, "meta.json"), &got)
	if got.FormatVersion != 1 || got.TrainExamples != len(res.Train) || got.ValidExamples != len(res.Valid) || got.Tokenizer != "tok.json" {
		t.Errorf("meta %+v", got)
	}
	var st map[string]any
	testfile.ReadJSON(t, filepath.Join(dir, "stats.json"), &st)
	for _, k := range []string{"messages", "dialogues", "examples", "train_tokens", "valid_tokens", "speakers"} {
		if _, ok := st[k]; !ok {
			t.Errorf("stats.json lacks %q", k)
		}
	}
	f, _ := os.Open(filepath.Join(dir, "preview.jsonl"))
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
		var p PreviewLine
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil || p.Prompt == "" {
			t.Errorf("preview line %q: %v", sc.Text(), err)
		}
	}
	if lines != 2 {
		t.Errorf("preview has %d lines, want 2", lines)
	}
}

func TestWriteDirVocabCheck(t *testing.T) {
	res := buildFixture(t, "single_new.json", Limits{})
	if err := WriteDir(t.TempDir(), res, Meta{VocabSize: 100}); err == nil {
		t.Error("ids above the vocabulary were written")
	}
}

// TestWriteDirFailureKeepsOld: a write that fails half-way leaves the
// previous dataset complete, and no temporary directory behind.
func TestWriteDirFailureKeepsOld(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	res := buildFixture(t, "single_new.json", Limits{})
	if err := WriteDir(dir, res, Meta{VocabSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	res.Train = res.Train[:1] // a different dataset, which fails its vocabulary check
	if err := WriteDir(dir, res, Meta{VocabSize: 100}); err == nil {
		t.Fatal("ids above the vocabulary were written")
	}
	after, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil || string(after) != string(before) {
		t.Errorf("meta.json changed by a failed write (%v):\n%s", err, after)
	}
	if n := len(readLE[uint64](t, filepath.Join(dir, "train.offsets.u64"))); n != len(buildFixture(t, "single_new.json", Limits{}).Train)+1 {
		t.Errorf("train offsets changed: %d", n)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	// A successful write replaces it.
	if err := WriteDir(dir, res, Meta{VocabSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if n := len(readLE[uint64](t, filepath.Join(dir, "train.offsets.u64"))); n != 2 {
		t.Errorf("train offsets after replacing: %d entries, want 2", n)
	}
}

func TestWriteDirRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteDir(dir, buildFixture(t, "single_new.json", Limits{}), Meta{})
	if err == nil || !strings.Contains(err.Error(), "notes.txt, which is not a dataset file") {
		t.Errorf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Error(err)
	}
}

func readLE[T uint8 | uint32 | uint64](tb testing.TB, path string) []T {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var zero T
	out := make([]T, len(data)/binary.Size(zero))
	if _, err := binary.Decode(data, binary.LittleEndian, out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestSpoolWritesTheSameFiles: ids kept in the spool file give byte-for-byte
// the dataset of ids kept in memory.
func TestSpoolWritesTheSameFiles(t *testing.T) {
	build := func(spool bool) string {
		b := NewBuilder(runeEncoder{}, Config{Format: dialog.FormatRuDialoGPT, Limits: Limits{Context: 512, MaxNewTokens: 40}, ValidFraction: 0.5, Preview: 2})
		if spool {
			if err := b.SpoolIDs(t.TempDir()); err != nil {
				t.Fatal(err)
			}
		}
		next := 0
		read, err := ReadTelegram(openFixture(t, "single_new.json"), TelegramOptions{}, func(c Chat) error {
			var err error
			next, err = EachSample(c.Messages, DialogueOptions{Gap: 30 * time.Minute, MaxTurns: 6}, next, b.Skip, func(s Sample) error {
				return b.Add([]Sample{s})
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		res := b.Finish(read)
		defer res.Close()
		if spool && (res.Train[0].IDs != nil || res.Train[0].Len() == 0) {
			t.Fatalf("spooled example %+v", res.Train[0])
		}
		dir := filepath.Join(t.TempDir(), "out")
		if err := WriteDir(dir, res, Meta{VocabSize: 1 << 20}); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	mem, spooled := build(false), build(true)
	for name := range datasetFiles {
		a, errA := os.ReadFile(filepath.Join(mem, name))
		b, errB := os.ReadFile(filepath.Join(spooled, name))
		if errA != nil || errB != nil || string(a) != string(b) {
			t.Errorf("%s differs (%v, %v)", name, errA, errB)
		}
	}
}
