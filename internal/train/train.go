// Package train runs `dialogbot train`: a chat export becomes a model
// directory that chat and serve load, in three resumable stages: the dataset
// (in-process, the code of `dialogbot dataset`), fine-tuning
// (model/python/finetune.py) and export (model/python/export.py).
package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dialogbot/dialogbot/model/dataset"
	"github.com/dialogbot/dialogbot/model/dialog"
)

// Options of a run. Dataset.Out is set by Run (WORK/dataset).
type Options struct {
	Dataset    dataset.Job
	Encoder    dialog.Encoder // the model's tokenizer
	ModelDir   string         // Hugging Face GPT-2 directory to fine-tune
	Out        string         // the model directory to leave
	Steps      int            // optimizer steps (0: Epochs)
	Epochs     float64        // passes over the training split (0 and no Steps: finetune.py's default)
	Device     string         // auto, cpu or cuda
	Python     string         // an interpreter that imports torch
	ScriptsDir string         // model/python
	Display    Display
}

// Result says where things are and what training achieved.
type Result struct {
	ModelDir string
	Report   Report
	Skipped  []string // stages that were already done
}

// Layout of --out: the exported model at the top (what chat and serve
// load), the report beside it, the work of the stages in WorkDir.
const (
	WorkDir   = "train"
	stateFile = "state.json"
	logFile   = "train.log"
)

// run is one Run's paths and state.
type run struct {
	opt   Options
	work  string
	log   *os.File
	state state
}

// Run does the stages that are not done yet. Interrupted (ctx ends), it
// returns an error wrapping ErrInterrupted and the next Run resumes.
func Run(ctx context.Context, opt Options) (Result, error) {
	// The scripts run from /, so every path they get must be absolute.
	for _, p := range []*string{&opt.Out, &opt.ModelDir, &opt.ScriptsDir} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return Result{}, err
		}
		*p = abs
	}
	r, err := open(opt)
	if err != nil {
		return Result{}, err
	}
	defer r.log.Close()
	fmt.Fprintf(r.log, "=== dialogbot train %s\n", time.Now().UTC().Format(time.RFC3339))
	var res Result
	res.ModelDir = opt.Out
	steps := []struct {
		name string
		do   func(context.Context) (bool, error)
	}{{"dataset", r.dataset}, {"training", r.finetune}, {"export", r.export}}
	for _, s := range steps {
		did, err := s.do(ctx)
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, ErrInterrupted) {
				err = fmt.Errorf("%w: %w", ErrInterrupted, err)
			}
			return res, fmt.Errorf("%s: %w (log: %s)", s.name, err, r.log.Name())
		}
		if !did {
			res.Skipped = append(res.Skipped, s.name)
		}
	}
	res.Report, err = installReport(r.finetuneDir(), opt.Out)
	return res, err
}

// open checks --out (new, empty, or made by an earlier run) and loads the state.
func open(opt Options) (*run, error) {
	if opt.Display == nil {
		opt.Display = NewLines(io.Discard, time.Hour)
	}
	work := filepath.Join(opt.Out, WorkDir)
	if entries, err := os.ReadDir(opt.Out); err == nil && len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(work, stateFile)); err != nil {
			return nil, fmt.Errorf("--out %s is not empty and was not made by dialogbot train (no %s/%s): give a new directory", opt.Out, WorkDir, stateFile)
		}
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	st, err := loadState(filepath.Join(work, stateFile))
	if err != nil {
		return nil, err
	}
	// The state file exists from the start, so that a run stopped in its
	// first stage is recognised as ours by the next.
	if err := st.save(filepath.Join(work, stateFile)); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(work, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &run{opt: opt, work: work, log: log, state: st}, nil
}

func (r *run) saveState() error { return r.state.save(filepath.Join(r.work, stateFile)) }

func (r *run) datasetDir() string  { return filepath.Join(r.work, "dataset") }
func (r *run) finetuneDir() string { return filepath.Join(r.work, "finetune") }
