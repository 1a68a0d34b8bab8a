package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"golang.org/x/term"

	"github.com/dialogbot/dialogbot/internal/pyenv"
	"github.com/dialogbot/dialogbot/internal/train"
	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/tokenizer"
)

func init() {
	register("train", "a Telegram export or dialogue CSV to a fine-tuned model chat and serve load (resumable)", runTrain)
}

type trainFlags struct {
	datasetFlags
	model, out, device string
	steps              int
	epochs             float64
	python, pythonDir  string
	progress           string
}

func parseTrainFlags(args []string, s stdio) (trainFlags, error) {
	var f trainFlags
	fs := newFlagSet("train", s)
	f.addSourceFlags(fs)
	fs.StringVar(&f.model, "model", "", "Hugging Face GPT-2 `DIR` to fine-tune (config.json, model.safetensors, tokenizer.json)")
	fs.StringVar(&f.out, "out", "", "model `DIR` to write (chat --model DIR); run again to resume")
	fs.IntVar(&f.steps, "steps", 0, "optimizer steps (default: --epochs)")
	fs.Float64Var(&f.epochs, "epochs", 0, "passes over the training examples (default: finetune.py's, 1)")
	fs.StringVar(&f.device, "device", "auto", "auto, cpu or cuda")
	fs.StringVar(&f.python, "python", "", "Python with torch (default: $PYTHON, python3, /usr/bin/python3, the first that imports torch)")
	fs.StringVar(&f.pythonDir, "python-dir", "", "folder of finetune.py and export.py (default: $"+pyenv.EnvScriptsDir+", else model/python beside the binary)")
	fs.StringVar(&f.progress, "progress", "auto", "auto (a bar on a terminal, else lines), bar or lines")
	if err := parseFlags(fs, args); err != nil {
		return f, err
	}
	return f, f.check()
}

func (f trainFlags) check() error {
	switch {
	case f.model == "" || f.out == "":
		return fmt.Errorf("%w: --model and --out are required", errUsage)
	case f.steps < 0 || f.epochs < 0:
		return fmt.Errorf("%w: --steps and --epochs must not be negative", errUsage)
	case f.steps > 0 && f.epochs > 0:
		return fmt.Errorf("%w: give --steps or --epochs, not both", errUsage)
	case f.device != "auto" && f.device != "cpu" && f.device != "cuda":
		return fmt.Errorf("%w: --device %q: want auto, cpu or cuda", errUsage, f.device)
	case f.progress != "auto" && f.progress != "bar" && f.progress != "lines":
		return fmt.Errorf("%w: --progress %q: want auto, bar or lines", errUsage, f.progress)
	}
	return f.checkSource()
}

func runTrain(ctx context.Context, args []string, s stdio) error {
	fl, err := parseTrainFlags(args, s)
	if err != nil {
		return err
	}
	opt, err := fl.options(ctx, s)
	if err != nil {
		return err
	}
	// Only the dataset stage allocates much; the others wait on Python.
	defer debug.SetGCPercent(debug.SetGCPercent(datasetGCPercent))
	res, err := train.Run(ctx, opt)
	if errors.Is(err, train.ErrInterrupted) {
		fmt.Fprintf(s.err, "train: stopped; run the same command again to resume\n")
	}
	if err != nil {
		return err
	}
	printTrainResult(s.out, res)
	return nil
}

// options resolves the model's tokenizer, prompt format and context, the
// dataset job, the Python and the scripts.
func (f trainFlags) options(ctx context.Context, s stdio) (train.Options, error) {
	model, err := filepath.Abs(f.model)
	if err != nil {
		return train.Options{}, err
	}
	f.tokenizer = filepath.Join(model, "tokenizer.json")
	tok, err := tokenizer.LoadTokenizer(f.tokenizer)
	if err != nil {
		return train.Options{}, fmt.Errorf("--model %s: %w (a Hugging Face GPT-2 directory with tokenizer.json)", f.model, err)
	}
	if f.format, err = hfFormat(tok); err != nil {
		return train.Options{}, err
	}
	if f.context == 0 {
		if f.context, err = hfContext(model); err != nil {
			return train.Options{}, err
		}
	}
	cfg, err := f.config()
	if err != nil {
		return train.Options{}, err
	}
	cfg.Preview = 20
	job, err := f.job(cfg, tok.VocabSize(), nil)
	if err != nil {
		return train.Options{}, err
	}
	scripts, err := pyenv.ScriptsDir(f.pythonDir)
	if err != nil {
		return train.Options{}, err
	}
	py := f.python
	if py == "" {
		if py, err = pyenv.Python(ctx); err != nil {
			return train.Options{}, err
		}
	}
	return train.Options{Dataset: job, Encoder: tok, ModelDir: model, Out: f.out, Steps: f.steps, Epochs: f.epochs,
		Device: f.device, Python: py, ScriptsDir: scripts, Display: f.display(s.err)}, nil
}

// hfFormat is the prompt format the tokenizer supports, as export.py
// decides it: ruDialoGPT's when it has both speaker tags.
func hfFormat(tok *tokenizer.Tokenizer) (string, error) {
	_, first := tok.TokenID(dialog.TagFirst)
	_, second := tok.TokenID(dialog.TagSecond)
	if first && second {
		return string(dialog.FormatRuDialoGPT), nil
	}
	return string(dialog.FormatDialoGPT), nil
}

// hfContext is serving's default context, or the model's n_positions when
// smaller (as dataset --model-meta does with an exported model).
func hfContext(dir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return 0, fmt.Errorf("--model: %w", err)
	}
	var cfg struct {
		NPositions int `json:"n_positions"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return 0, fmt.Errorf("--model %s/config.json: %w", dir, err)
	}
	if cfg.NPositions <= 0 {
		return defaultContext, nil
	}
	return min(cfg.NPositions, defaultContext), nil
}

func (f trainFlags) display(w io.Writer) train.Display {
	bar := f.progress == "bar"
	if f.progress == "auto" {
		file, ok := w.(*os.File)
		bar = ok && term.IsTerminal(int(file.Fd()))
	}
	if bar {
		return train.NewBar(w)
	}
	return train.NewLines(w, 10*time.Second)
}

func printTrainResult(w io.Writer, res train.Result) {
	fmt.Fprintf(w, "train: model in %s; talk to it: dialogbot chat --model %s\n", res.ModelDir, res.ModelDir)
	r := res.Report
	if r.PPLBefore != nil && r.PPLAfter != nil {
		fmt.Fprintf(w, "train: held-out reply perplexity %.2f before, %.2f after training (%d steps", *r.PPLBefore, *r.PPLAfter, r.Steps)
		if r.TokensPerS > 0 {
			fmt.Fprintf(w, ", %.0f training tokens/s", r.TokensPerS)
		}
		fmt.Fprintln(w, ")")
	}
	for _, f := range r.Files {
		fmt.Fprintf(w, "train: report: %s\n", f)
	}
}
