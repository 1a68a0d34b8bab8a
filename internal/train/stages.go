package train

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dialogbot/dialogbot/model/dataset"
)

// Stage names as the display shows them.
const (
	stageDataset  = "[1/3] dataset"
	stageTraining = "[2/3] training"
	stageExport   = "[3/3] export"
)

// datasetKey names what the dataset is made from: the source file's
// version and every option that changes the examples.
func (r *run) datasetKey() (string, error) {
	fk, err := statKey(r.opt.Dataset.Source.Path())
	if err != nil {
		return "", err
	}
	j := r.opt.Dataset
	return key(struct {
		File      fileKey
		Telegram  dataset.TelegramOptions
		Dialogue  dataset.DialogueOptions
		Roles     dataset.CSVRoles
		Anonymize bool
		Config    dataset.Config
		Meta      dataset.Meta
		CSV       bool
	}{fk, j.Telegram, j.Dialogue, j.CSVRoles, j.Anonymize, j.Config, j.Meta, j.Source.CSV != ""}), nil
}

func (r *run) dataset(ctx context.Context) (bool, error) {
	k, err := r.datasetKey()
	if err != nil {
		return false, err
	}
	d := r.opt.Display
	if r.state.Dataset == k && exists(filepath.Join(r.datasetDir(), "meta.json")) {
		d.Note(stageDataset + ": done before, kept")
		return false, nil
	}
	job := r.opt.Dataset
	job.Out = r.datasetDir()
	job.Warn = func(msg string, args ...any) { fmt.Fprintln(r.log, append([]any{"dataset:", msg}, args...)...) }
	size := fileSize(job.Source.Path())
	d.Stage(stageDataset, size, Bytes)
	start := time.Now()
	job.Progress = func(n, total int64) { d.Progress(n, bytesDetail(n, total, time.Since(start))) }
	st, err := dataset.Build(ctx, r.opt.Encoder, job)
	if err != nil {
		return false, err
	}
	summary := fmt.Sprintf("%d messages, %d examples (train %d / %d tokens, valid %d / %d tokens) in %s",
		st.Messages, st.Examples, st.TrainExamples, st.TrainTokens, st.ValidExamples, st.ValidTokens, time.Since(start).Round(time.Millisecond))
	fmt.Fprintln(r.log, "dataset:", summary)
	d.EndStage(summary)
	r.state.Dataset = k
	return true, r.saveState()
}

func bytesDetail(n, total int64, elapsed time.Duration) string {
	s := fmt.Sprintf("%.1f/%.1f MB", float64(n)/(1<<20), float64(total)/(1<<20))
	if n > 0 && n < total {
		left := time.Duration(float64(elapsed) * float64(total-n) / float64(n))
		s += " · eta " + fmtDuration(left)
	}
	return s
}

func fmtDuration(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

func (r *run) finetuneArgs() []string {
	o := r.opt
	args := []string{"--model", o.ModelDir, "--data", r.datasetDir(), "--out", r.finetuneDir(), "--device", o.Device}
	switch {
	case o.Steps > 0:
		args = append(args, "--steps", fmt.Sprint(o.Steps))
	case o.Epochs > 0:
		args = append(args, "--epochs", fmt.Sprint(o.Epochs))
	}
	return args
}

func (r *run) finetune(ctx context.Context) (bool, error) {
	base := key(struct{ Dataset, Model string }{r.state.Dataset, r.opt.ModelDir})
	k := key(struct {
		Base   string
		Steps  int
		Epochs float64
	}{base, r.opt.Steps, r.opt.Epochs})
	d := r.opt.Display
	if r.state.Finetune == k && exists(filepath.Join(r.finetuneDir(), "best", "config.json")) {
		d.Note(stageTraining + ": done before, kept")
		return false, nil
	}
	if r.state.Base != base {
		// A checkpoint of other data or another model cannot be resumed.
		if exists(r.finetuneDir()) {
			d.Note(stageTraining + ": the dataset or the model changed: training starts over")
		}
		if err := os.RemoveAll(r.finetuneDir()); err != nil {
			return false, err
		}
		r.state.Base, r.state.Finetune, r.state.Export = base, "", ""
		if err := r.saveState(); err != nil {
			return false, err
		}
	}
	path := filepath.Join(r.opt.ScriptsDir, "finetune.py")
	tp := newTrainProgress(d)
	s := script{name: "finetune.py", python: r.opt.Python, path: path, args: r.finetuneArgs(), log: r.log, onEvent: tp.event, onStderr: tp.stderr}
	if supportsProgressJSON(path) {
		s.args = append(s.args, "--progress-json")
	} else {
		// An older finetune.py: its human step lines, one per step, are read instead.
		s.args = append(s.args, "--log-every", "1")
		tp.readStderrSteps = true
	}
	d.Stage(stageTraining, 0, Steps)
	d.Progress(0, "loading the model and validating it before training")
	fmt.Fprintf(r.log, "running %s %s\n", r.opt.Python, strings.Join(append([]string{path}, s.args...), " "))
	if err := s.run(ctx); err != nil {
		return false, err
	}
	d.EndStage(tp.summary())
	r.state.Finetune = k
	return true, r.saveState()
}

// supportsProgressJSON reports whether the script knows --progress-json.
func supportsProgressJSON(path string) bool {
	src, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(src), `"--progress-json"`)
}

func (r *run) export(ctx context.Context) (bool, error) {
	d := r.opt.Display
	k := r.state.Finetune
	if r.state.Export == k && exists(filepath.Join(r.opt.Out, "dialogbot.json")) {
		d.Note(stageExport + ": done before, kept")
		return false, nil
	}
	tmp := filepath.Join(r.work, "export.tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return false, err
	}
	d.Stage(stageExport, 0, Steps)
	start := time.Now()
	s := script{name: "export.py", python: r.opt.Python, path: filepath.Join(r.opt.ScriptsDir, "export.py"),
		args: []string{"--hf", filepath.Join(r.finetuneDir(), "best"), "--out", tmp}, log: r.log,
		onStderr: func(line string) { d.Progress(0, clip(line, 60)) }}
	fmt.Fprintf(r.log, "running %s %s %s\n", r.opt.Python, s.path, strings.Join(s.args, " "))
	if err := s.run(ctx); err != nil {
		return false, err
	}
	if err := installModel(tmp, r.opt.Out); err != nil {
		return false, err
	}
	d.EndStage(fmt.Sprintf("model written to %s in %s", r.opt.Out, time.Since(start).Round(time.Millisecond)))
	r.state.Export = k
	return true, r.saveState()
}

// installModel moves the exported files into dir. dialogbot.json, which
// makes a directory a model for chat and serve, goes first out and last in,
// so a crash in between never pairs new metadata with old weights.
func installModel(tmp, dir string) error {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, "dialogbot.json")); err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, e := range entries {
		if e.Name() != "dialogbot.json" {
			if err := os.Rename(filepath.Join(tmp, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := os.Rename(filepath.Join(tmp, "dialogbot.json"), filepath.Join(dir, "dialogbot.json")); err != nil {
		return fmt.Errorf("export wrote no dialogbot.json: %w", err)
	}
	return os.RemoveAll(tmp)
}

func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
