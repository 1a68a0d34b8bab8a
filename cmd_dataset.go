package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/tokenizer"

	"github.com/dialogbot/dialogbot/model"
	"github.com/dialogbot/dialogbot/model/dataset"
)

func init() {
	register("dataset", "turn a Telegram export or a dialogue CSV into tokenized training examples", runDataset)
}

// serving is the shipped default config: training examples are cut to the
// context, the turns and the reply room that the bot gives the model.
var servingDefaults = config.Default()

// defaultContext is serving's default model.max_context.
var defaultContext = servingDefaults.Model.MaxContext

type datasetFlags struct {
	telegram, csv, tokenizer, out string
	chat, speaker, modelMeta      string
	format, media, csvRoles       string
	gap                           time.Duration
	anonymize, forwarded          bool
	maxTurns, context, maxNew     int
	validFraction                 float64
	preview, progressMB           int
}

func parseDatasetFlags(args []string, s stdio) (datasetFlags, error) {
	var f datasetFlags
	fs := newFlagSet("dataset", s)
	f.addSourceFlags(fs)
	fs.StringVar(&f.tokenizer, "tokenizer", "", "the model's tokenizer.json (`FILE`)")
	fs.StringVar(&f.out, "out", "", "output `DIR` (see model/dataset/FORMAT.md)")
	fs.StringVar(&f.modelMeta, "model-meta", "", "exported model `DIR` whose dialogbot.json gives the context length and prompt format")
	fs.StringVar(&f.format, "format", "", "prompt format: rudialogpt or dialogpt (default: the model's, else rudialogpt)")
	fs.IntVar(&f.preview, "preview", 20, "examples written to preview.jsonl")
	fs.IntVar(&f.progressMB, "progress-mb", 16, "report progress every `N` MB read (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return f, err
	}
	return f, f.check()
}

// addSourceFlags defines the flags that say what the examples are made of;
// dataset and train share them, so both make the same examples.
func (f *datasetFlags) addSourceFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.telegram, "telegram", "", "Telegram Desktop JSON export (`FILE`)")
	fs.StringVar(&f.csv, "csv", "", "dialogue CSV with context_N..context_1,response columns (`FILE`)")
	fs.StringVar(&f.chat, "chat", "", "chat `NAME|ID` of a full-account export (default: all chats)")
	fs.StringVar(&f.speaker, "speaker", "", "learn the replies of this sender only (`NAME|ID`; default: everyone)")
	fs.StringVar(&f.media, "media", "drop", "media without a caption: drop or placeholder")
	fs.StringVar(&f.csvRoles, "csv-roles", "alternate", "who wrote the CSV context cells: alternate (back from the response) or user")
	fs.DurationVar(&f.gap, "gap", 30*time.Minute, "a pause longer than this starts a new dialogue")
	fs.BoolVar(&f.anonymize, "anonymize", false, "replace phone numbers, e-mails and links with placeholders")
	fs.BoolVar(&f.forwarded, "forwarded", false, "keep forwarded messages")
	fs.IntVar(&f.maxTurns, "max-turns", servingDefaults.Bot.HistoryTurns, "most turns in a prompt, as serving's bot.history_turns")
	fs.IntVar(&f.context, "context", 0, "context length in tokens, as serving's model.max_context (default: 512, or the model's if smaller)")
	fs.IntVar(&f.maxNew, "max-new-tokens", servingDefaults.Generation.MaxNewTokens, "tokens kept free for the reply when cutting the prompt, as in serving")
	fs.Float64Var(&f.validFraction, "valid-fraction", 0.1, "fraction of the dialogues, the latest, for validation")
}

func (f datasetFlags) check() error {
	if f.tokenizer == "" || f.out == "" {
		return fmt.Errorf("%w: --tokenizer and --out are required", errUsage)
	}
	return f.checkSource()
}

func (f datasetFlags) checkSource() error {
	switch {
	case (f.telegram == "") == (f.csv == ""):
		return fmt.Errorf("%w: give exactly one of --telegram FILE and --csv FILE", errUsage)
	case f.csv != "" && (f.chat != "" || f.speaker != ""):
		return fmt.Errorf("%w: --chat and --speaker need --telegram", errUsage)
	case f.validFraction < 0 || f.validFraction > 1:
		return fmt.Errorf("%w: --valid-fraction %v not in [0, 1]", errUsage, f.validFraction)
	case f.maxTurns < 0 || f.context < 0 || f.maxNew < 0 || f.gap < 0:
		return fmt.Errorf("%w: --max-turns, --context, --max-new-tokens and --gap must not be negative", errUsage)
	}
	return nil
}

// datasetGCPercent is the garbage collector's target while a dataset is
// built: Go's default (100) lets the heap grow to twice what is live, which
// with a chat of hundreds of MB is most of the peak memory. 25 keeps a
// 200 MB export within twice its size for about 50% more CPU time
// (docs/train-command.md).
const datasetGCPercent = 25

func runDataset(ctx context.Context, args []string, s stdio) error {
	fl, err := parseDatasetFlags(args, s)
	if err != nil {
		return err
	}
	defer debug.SetGCPercent(debug.SetGCPercent(datasetGCPercent))
	log := slog.New(slog.NewTextHandler(s.err, nil))
	cfg, err := fl.config()
	if err != nil {
		return err
	}
	tok, err := tokenizer.LoadTokenizer(fl.tokenizer)
	if err != nil {
		return err
	}
	job, err := fl.job(cfg, tok.VocabSize(), log)
	if err != nil {
		return err
	}
	st, err := dataset.Build(ctx, tok, job)
	if err != nil {
		return err
	}
	summarize(s.err, fl.out, st)
	return nil
}

// job is the dataset.Job the flags describe.
func (f datasetFlags) job(cfg dataset.Config, vocab int, log *slog.Logger) (dataset.Job, error) {
	roles, err := dataset.ParseCSVRoles(f.csvRoles)
	if err != nil {
		return dataset.Job{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	media, err := dataset.ParseMediaMode(f.media)
	if err != nil {
		return dataset.Job{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	meta, err := dataset.TokenizerMeta(f.tokenizer, cfg, vocab)
	if err != nil {
		return dataset.Job{}, err
	}
	job := dataset.Job{
		Source:    dataset.Source{Telegram: f.telegram, CSV: f.csv},
		Telegram:  dataset.TelegramOptions{Chat: f.chat, KeepForwarded: f.forwarded, Media: media, Anonymize: f.anonymize},
		Dialogue:  dataset.DialogueOptions{Gap: f.gap, Speaker: f.speaker, MaxTurns: f.maxTurns},
		CSVRoles:  roles,
		Anonymize: f.anonymize,
		Config:    cfg,
		Meta:      meta,
		Out:       f.out,
	}
	if log != nil {
		job.Warn = log.Warn
	}
	if f.progressMB > 0 {
		path := job.Source.Path()
		job.ProgressStep = int64(f.progressMB) << 20
		job.Progress = func(n, total int64) {
			if total >= job.ProgressStep && n < total {
				log.Info("reading", "file", path, "MB", n>>20, "of_MB", total>>20, "percent", n*100/total)
			}
		}
	}
	return job, nil
}

// config resolves the context length and prompt format: flags first, then
// the model's metadata, then nano-ru's defaults.
func (f datasetFlags) config() (dataset.Config, error) {
	format, context := f.format, f.context
	if f.modelMeta != "" {
		m, err := model.LoadMeta(f.modelMeta)
		if err != nil {
			return dataset.Config{}, err
		}
		if format == "" {
			format = m.PromptFormat
		}
		if context == 0 {
			// What serving uses by default (model.max_context), so examples
			// are cut exactly as the bot cuts its prompts.
			context = min(m.NPositions, defaultContext)
		}
	}
	if context == 0 {
		context = defaultContext
	}
	pf, err := dialog.ParseFormat(format)
	if err != nil {
		return dataset.Config{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	if f.maxNew >= context {
		return dataset.Config{}, fmt.Errorf("%w: --max-new-tokens %d leaves no room in a context of %d", errUsage, f.maxNew, context)
	}
	lim := dataset.Limits{Context: context, MaxNewTokens: f.maxNew, MaxTurns: f.maxTurns}
	return dataset.Config{Format: pf, Limits: lim, ValidFraction: f.validFraction, Preview: f.preview}, nil
}

func summarize(w io.Writer, out string, st dataset.Stats) {
	fmt.Fprintf(w, "dataset: %d messages, %d dialogues, %d examples (train %d examples / %d tokens, valid %d / %d) -> %s\n",
		st.Messages, st.Dialogues, st.Examples, st.TrainExamples, st.TrainTokens, st.ValidExamples, st.ValidTokens, out)
}
