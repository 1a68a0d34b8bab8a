package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
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
	fs.StringVar(&f.telegram, "telegram", "", "Telegram Desktop JSON export (`FILE`)")
	fs.StringVar(&f.csv, "csv", "", "dialogue CSV with context_N..context_1,response columns (`FILE`)")
	fs.StringVar(&f.tokenizer, "tokenizer", "", "the model's tokenizer.json (`FILE`)")
	fs.StringVar(&f.out, "out", "", "output `DIR` (see model/dataset/FORMAT.md)")
	fs.StringVar(&f.chat, "chat", "", "chat `NAME|ID` of a full-account export (default: all chats)")
	fs.StringVar(&f.speaker, "speaker", "", "learn the replies of this sender only (`NAME|ID`; default: everyone)")
	fs.StringVar(&f.modelMeta, "model-meta", "", "exported model `DIR` whose dialogbot.json gives the context length and prompt format")
	fs.StringVar(&f.format, "format", "", "prompt format: rudialogpt or dialogpt (default: the model's, else rudialogpt)")
	fs.StringVar(&f.media, "media", "drop", "media without a caption: drop or placeholder")
	fs.StringVar(&f.csvRoles, "csv-roles", "alternate", "who wrote the CSV context cells: alternate (back from the response) or user")
	fs.DurationVar(&f.gap, "gap", 30*time.Minute, "a pause longer than this starts a new dialogue")
	fs.BoolVar(&f.anonymize, "anonymize", false, "replace phone numbers, e-mails and links with placeholders")
	fs.BoolVar(&f.forwarded, "forwarded", false, "keep forwarded messages")
	fs.IntVar(&f.maxTurns, "max-turns", servingDefaults.Bot.HistoryTurns, "most turns in a prompt, as serving's bot.history_turns")
	fs.IntVar(&f.context, "context", 0, "context length in tokens, as serving's model.max_context (default: 512, or the model's if smaller)")
	fs.IntVar(&f.maxNew, "max-new-tokens", servingDefaults.Generation.MaxNewTokens, "tokens kept free for the reply when cutting the prompt, as in serving")
	fs.Float64Var(&f.validFraction, "valid-fraction", 0.1, "fraction of the dialogues, the latest, for validation")
	fs.IntVar(&f.preview, "preview", 20, "examples written to preview.jsonl")
	fs.IntVar(&f.progressMB, "progress-mb", 16, "report progress every `N` MB read (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return f, err
	}
	return f, f.check()
}

func (f datasetFlags) check() error {
	switch {
	case (f.telegram == "") == (f.csv == ""):
		return fmt.Errorf("%w: give exactly one of --telegram FILE and --csv FILE", errUsage)
	case f.tokenizer == "" || f.out == "":
		return fmt.Errorf("%w: --tokenizer and --out are required", errUsage)
	case f.csv != "" && (f.chat != "" || f.speaker != ""):
		return fmt.Errorf("%w: --chat and --speaker need --telegram", errUsage)
	case f.validFraction < 0 || f.validFraction > 1:
		return fmt.Errorf("%w: --valid-fraction %v not in [0, 1]", errUsage, f.validFraction)
	case f.maxTurns < 0 || f.context < 0 || f.maxNew < 0 || f.gap < 0:
		return fmt.Errorf("%w: --max-turns, --context, --max-new-tokens and --gap must not be negative", errUsage)
	}
	return nil
}

func runDataset(ctx context.Context, args []string, s stdio) error {
	fl, err := parseDatasetFlags(args, s)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(s.err, nil))
	cfg, err := fl.config()
	if err != nil {
		return err
	}
	tok, err := tokenizer.LoadTokenizer(fl.tokenizer)
	if err != nil {
		return err
	}
	b := dataset.NewBuilder(tok, cfg)
	read, err := fl.read(ctx, b, log)
	if err != nil {
		return err
	}
	res := b.Finish(read)
	meta, err := fl.meta(cfg, tok.VocabSize())
	if err != nil {
		return err
	}
	if err := dataset.WriteDir(fl.out, res, meta); err != nil {
		return err
	}
	summarize(s.err, fl.out, res.Stats)
	return nil
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

// read parses the source into the builder, one chat at a time.
func (f datasetFlags) read(ctx context.Context, b *dataset.Builder, log *slog.Logger) (dataset.ReadStats, error) {
	path := f.telegram + f.csv
	in, err := openWithProgress(path, f.progressMB, log)
	if err != nil {
		return dataset.ReadStats{}, err
	}
	defer in.Close()
	st, err := f.readFrom(ctx, in, b, log)
	if err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

func (f datasetFlags) readFrom(ctx context.Context, in io.Reader, b *dataset.Builder, log *slog.Logger) (dataset.ReadStats, error) {
	if f.csv != "" {
		roles, err := dataset.ParseCSVRoles(f.csvRoles)
		if err != nil {
			return dataset.ReadStats{}, fmt.Errorf("%w: %v", errUsage, err)
		}
		samples, st, err := dataset.ReadCSV(in, roles, f.anonymize, b.Skip)
		if err != nil {
			return st, err
		}
		return st, b.Add(samples)
	}
	media, err := dataset.ParseMediaMode(f.media)
	if err != nil {
		return dataset.ReadStats{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	opt := dataset.TelegramOptions{Chat: f.chat, KeepForwarded: f.forwarded, Media: media, Anonymize: f.anonymize}
	dopt := dataset.DialogueOptions{Gap: f.gap, Speaker: f.speaker, MaxTurns: f.maxTurns}
	next := 0
	return dataset.ReadTelegram(in, opt, func(c dataset.Chat) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var samples []dataset.Sample
		samples, next = dataset.Samples(c.Messages, dopt, next, b.Skip)
		if len(samples) == 0 {
			log.Warn("chat has no dialogue (a channel, or one sender only): 0 examples", "chat", c.Name, "id", c.ID, "type", c.Type, "messages", len(c.Messages))
		}
		return b.Add(samples)
	})
}

// openWithProgress opens the input; big ones report how far reading got.
func openWithProgress(path string, stepMB int, log *slog.Logger) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || stepMB <= 0 || fi.Size() < int64(stepMB)<<20 {
		return f, nil
	}
	total := fi.Size()
	pr := &dataset.ProgressReader{R: f, Step: int64(stepMB) << 20, Report: func(n int64) {
		log.Info("reading", "file", path, "MB", n>>20, "of_MB", total>>20, "percent", n*100/total)
	}}
	return struct {
		io.Reader
		io.Closer
	}{pr, f}, nil
}

func (f datasetFlags) meta(cfg dataset.Config, vocab int) (dataset.Meta, error) {
	data, err := os.ReadFile(f.tokenizer)
	if err != nil {
		return dataset.Meta{}, err
	}
	sum := sha256.Sum256(data)
	return dataset.Meta{
		PromptFormat: string(cfg.Format), Tokenizer: f.tokenizer, TokenizerSHA256: hex.EncodeToString(sum[:]),
		VocabSize: vocab, ContextLength: cfg.Limits.Context, MaxNewTokens: cfg.Limits.MaxNewTokens, MaxTurns: cfg.Limits.MaxTurns,
	}, nil
}

func summarize(w io.Writer, out string, st dataset.Stats) {
	fmt.Fprintf(w, "dataset: %d messages, %d dialogues, %d examples (train %d examples / %d tokens, valid %d / %d) -> %s\n",
		st.Messages, st.Dialogues, st.Examples, st.TrainExamples, st.TrainTokens, st.ValidExamples, st.ValidTokens, out)
	dropped := 0
	for _, n := range st.Dropped {
		dropped += n
	}
	switch {
	case st.Examples == 0 && dropped > 0:
		fmt.Fprintf(w, "dataset: 0 examples: all %d dialogue samples were too long for the context (--context, --max-new-tokens; see stats.json)\n", dropped)
	case st.Examples == 0:
		fmt.Fprintln(w, "dataset: no dialogue found, 0 examples: is this a channel, or a chat with one sender? (see stats.json for what was skipped)")
	}
}
