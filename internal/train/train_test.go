package train

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dialogbot/dialogbot/model/dataset"
	"github.com/dialogbot/dialogbot/model/dialog"
)

// runeEncoder is a fake tokenizer: one id per rune, the tags 0..2.
type runeEncoder struct{}

// EncodeText encodes every rune, tags included, as plain text.
func (runeEncoder) EncodeText(text string) []int {
	ids := make([]int, 0, len(text))
	for _, r := range text {
		ids = append(ids, 3+int(r))
	}
	return ids
}

func (runeEncoder) Encode(text string) []int {
	var ids []int
	for text != "" {
		matched := false
		for id, tag := range []string{dialog.EOS, dialog.TagFirst, dialog.TagSecond} {
			if strings.HasPrefix(text, tag) {
				ids, text, matched = append(ids, id), text[len(tag):], true
				break
			}
		}
		if !matched {
			r := []rune(text)[0]
			ids = append(ids, 3+int(r))
			text = text[len(string(r)):]
		}
	}
	return ids
}

// recorder is a Display that keeps what it was told.
type recorder struct {
	mu     sync.Mutex
	events []string
	onStep func(done int64)
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}
func (r *recorder) Stage(name string, total int64, _ Unit) { r.add("stage %s %d", name, total) }
func (r *recorder) Progress(done int64, detail string) {
	r.add("progress %d %s", done, detail)
	if r.onStep != nil {
		r.onStep(done)
	}
}
func (r *recorder) Note(msg string)         { r.add("note %s", msg) }
func (r *recorder) EndStage(summary string) { r.add("end %s", summary) }

func (r *recorder) has(prefix string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

// options trains on a Telegram fixture of model/dataset with a fake trainer.
func options(t *testing.T, fake string) (Options, *recorder) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: the fake trainer is a Python script")
	}
	rec := &recorder{}
	src, err := filepath.Abs("../../model/dataset/testdata/single_new.json")
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := filepath.Abs(filepath.Join("testdata", fake))
	if err != nil {
		t.Fatal(err)
	}
	job := dataset.Job{
		Source:   dataset.Source{Telegram: src},
		Dialogue: dataset.DialogueOptions{Gap: 30 * time.Minute, MaxTurns: 6},
		Config:   dataset.Config{Format: dialog.FormatRuDialoGPT, Limits: dataset.Limits{Context: 512, MaxNewTokens: 40}, ValidFraction: 0.5},
	}
	return Options{Dataset: job, Encoder: runeEncoder{}, ModelDir: t.TempDir(), Out: filepath.Join(t.TempDir(), "model"),
		Steps: 3, Device: "cpu", Python: py, ScriptsDir: scripts, Display: rec}, rec
}

func runs(t *testing.T, opt Options) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(opt.Out, WorkDir, "finetune", "runs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func TestRunLeavesModelAndReport(t *testing.T) {
	opt, rec := options(t, "fakepy")
	res, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dialogbot.json", "model.pt", "tokenizer.json", "report.json", "report.md", "loss.svg"} {
		if !exists(filepath.Join(opt.Out, name)) {
			t.Errorf("%s missing in --out", name)
		}
	}
	if exists(filepath.Join(opt.Out, WorkDir, "export.tmp")) {
		t.Error("export.tmp left behind")
	}
	r := res.Report
	if r.PPLBefore == nil || *r.PPLBefore != 54.6 || r.PPLAfter == nil || *r.PPLAfter != 40 || r.Steps != 3 || len(r.Files) != 3 {
		t.Errorf("report %+v", r)
	}
	if len(res.Skipped) != 0 {
		t.Errorf("skipped %v on a first run", res.Skipped)
	}
	for _, want := range []string{
		"stage [1/3] dataset", "end 9 messages, 5 examples", // the dataset stage, in-process
		"stage [2/3] training 3", "progress 1 loss 3.9000 · 1000 tok/s · eta 0:00:00", "note [2/3] training: step 3: held-out loss 3.6900, perplexity 40.00",
		"stage [3/3] export", "progress 0 export: tracing", "end model written to",
	} {
		if !rec.has(want) {
			t.Errorf("display never got %q:\n%s", want, strings.Join(rec.events, "\n"))
		}
	}
	if r := runs(t, opt); len(r) != 1 || !strings.Contains(r[0], "--steps 3 --progress-json from=0") {
		t.Errorf("trainer runs %q", r)
	}
	log, _ := os.ReadFile(filepath.Join(opt.Out, WorkDir, logFile))
	if !strings.Contains(string(log), "human noise on stdout") || !strings.Contains(string(log), "finetune: loading the model") {
		t.Errorf("stdout noise and stderr not in the log:\n%s", log)
	}
}

func TestRunAgainSkipsDoneStagesAndResumes(t *testing.T) {
	opt, _ := options(t, "fakepy")
	if _, err := Run(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Skipped, ",") != "dataset,training,export" || len(runs(t, opt)) != 1 {
		t.Errorf("second run skipped %v, trainer ran %d times", res.Skipped, len(runs(t, opt)))
	}
	if res.Report.PPLAfter == nil {
		t.Error("no report numbers on a run that skipped everything")
	}
	// More steps: the dataset is kept, training resumes from its checkpoint, export is redone.
	opt.Steps = 5
	res, err = Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Skipped, ",") != "dataset" {
		t.Errorf("skipped %v, want only the dataset", res.Skipped)
	}
	if r := runs(t, opt); len(r) != 2 || !strings.HasSuffix(r[1], "from=3") {
		t.Errorf("trainer runs %q: want a resume from step 3", r)
	}
	// A new export of the chat: the dataset is rebuilt and training starts over.
	data, err := os.ReadFile(opt.Dataset.Source.Telegram)
	if err != nil {
		t.Fatal(err)
	}
	opt.Dataset.Source.Telegram = filepath.Join(t.TempDir(), "result.json")
	if err := os.WriteFile(opt.Dataset.Source.Telegram, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	if r := runs(t, opt); len(r) != 1 || !strings.HasSuffix(r[0], "from=0") {
		t.Errorf("trainer runs %q: want one fresh run on the new data", r)
	}
}

// TestInterruptLeavesResumableState: a cancel (Ctrl-C) reaches the trainer
// as one SIGINT; it leaves a checkpoint, and the next run resumes from it.
func TestInterruptLeavesResumableState(t *testing.T) {
	opt, rec := options(t, "fakepy")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec.onStep = func(done int64) {
		if done == 1 {
			cancel()
		}
	}
	t.Setenv("FAKE_MODE", "wait")
	_, err := Run(ctx, opt)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	if exists(filepath.Join(opt.Out, "dialogbot.json")) {
		t.Error("an interrupted run left a model")
	}
	t.Setenv("FAKE_MODE", "")
	rec.onStep = nil
	res, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if r := runs(t, opt); len(r) != 2 || !strings.HasSuffix(r[1], "from=1") {
		t.Errorf("trainer runs %q: want a resume from step 1", r)
	}
	if strings.Join(res.Skipped, ",") != "dataset" || !rec.has("note [2/3] training: resumed from") {
		t.Errorf("skipped %v; events:\n%s", res.Skipped, strings.Join(rec.events, "\n"))
	}
}

// TestRelativeOut: the scripts run from /, yet a relative --out works.
func TestRelativeOut(t *testing.T) {
	opt, _ := options(t, "fakepy")
	t.Chdir(filepath.Dir(opt.Out))
	opt.Out = "rel"
	res, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join("rel", "dialogbot.json")) || !filepath.IsAbs(res.ModelDir) {
		t.Errorf("model dir %q", res.ModelDir)
	}
}

func TestTrainerFailureShowsItsError(t *testing.T) {
	opt, _ := options(t, "fakepy")
	t.Setenv("FAKE_MODE", "fail")
	_, err := Run(context.Background(), opt)
	if err == nil || !strings.Contains(err.Error(), "finetune: error: the dataset was made with another tokenizer") ||
		!strings.Contains(err.Error(), filepath.Join(WorkDir, logFile)) {
		t.Errorf("got %v", err)
	}
}

// TestOlderTrainer: a finetune.py without --progress-json still shows its
// steps (from its human lines) and its numbers (from summary.json).
func TestOlderTrainer(t *testing.T) {
	opt, rec := options(t, "fakepy-old")
	res, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.has("stage [2/3] training 3") || !rec.has("progress 2 loss 3.5000 · 812 tok/s · eta 0:00:01") ||
		!rec.has("note [2/3] training: valid before step 0") {
		t.Errorf("events:\n%s", strings.Join(rec.events, "\n"))
	}
	if r := res.Report; r.PPLAfter == nil || *r.PPLAfter != 33.1 || r.TokensPerS != 812 {
		t.Errorf("report %+v", r)
	}
}

func TestOutMustBeNewOrOurs(t *testing.T) {
	opt, _ := options(t, "fakepy")
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opt.Out, "dialogbot.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), opt)
	if err == nil || !strings.Contains(err.Error(), "was not made by dialogbot train") {
		t.Errorf("got %v", err)
	}
}

func TestNoExamplesFailsBeforeTraining(t *testing.T) {
	opt, _ := options(t, "fakepy")
	opt.Dataset.Dialogue.Speaker = "Nobody"
	_, err := Run(context.Background(), opt)
	if err == nil || !strings.Contains(err.Error(), `--speaker "Nobody" matches no sender`) {
		t.Errorf("got %v", err)
	}
	if exists(filepath.Join(opt.Out, WorkDir, "finetune")) {
		t.Error("training ran")
	}
}
