package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dialogbot/dialogbot/model/dialog"
)

// ErrNoExamples is returned by Build when the source gives no training
// example; its message says why (no dialogue, all too long, ...).
var ErrNoExamples = errors.New("no training examples")

// Source is the input of a Job: exactly one of the two paths is set.
type Source struct {
	Telegram string // Telegram Desktop JSON export
	CSV      string // dialogue CSV
}

// Path is the file that is read.
func (s Source) Path() string { return s.Telegram + s.CSV }

// Job is everything `dialogbot dataset` does after parsing its flags, so
// that `dialogbot train` builds exactly the same dataset in-process.
type Job struct {
	Source    Source
	Telegram  TelegramOptions
	Dialogue  DialogueOptions
	CSVRoles  CSVRoles
	Anonymize bool // CSV cells (Telegram has its own in Telegram)
	Config    Config
	Meta      Meta
	Out       string

	// Progress, when set, is called with the bytes read so far and the
	// file size, every ProgressStep bytes (default 1 MB) and at the end.
	Progress     func(read, total int64)
	ProgressStep int64
	// Warn, when set, hears about chats that give no dialogue.
	Warn func(msg string, args ...any)
}

// Build reads the source, checks that it gives examples, and writes the
// dataset directory Out (replacing an older one only once the new one is
// complete). It returns the stats written to stats.json.
func Build(ctx context.Context, enc dialog.Encoder, job Job) (Stats, error) {
	f, size, err := openSource(job.Source.Path())
	if err != nil {
		return Stats{}, err
	}
	defer f.Close()
	var in io.Reader = ctxReader{ctx, f}
	if job.Progress != nil {
		in = job.progressReader(in, size)
	}
	b := NewBuilder(enc, job.Config)
	// The spool goes beside the output, on the disk the user chose for it.
	parent := filepath.Dir(filepath.Clean(job.Out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return Stats{}, fmt.Errorf("output directory: %w", err)
	}
	if err := b.SpoolIDs(parent); err != nil {
		return Stats{}, err
	}
	defer b.spool.close()
	var empty []Chat
	read, err := job.read(ctx, in, b, &empty)
	if err != nil {
		return Stats{}, fmt.Errorf("%s: %w", job.Source.Path(), err)
	}
	if job.Progress != nil {
		job.Progress(size, size)
	}
	res := b.Finish(read)
	if err := res.check(job.Dialogue.Speaker); err != nil {
		return res.Stats, err
	}
	for _, c := range empty {
		if job.Warn != nil {
			job.Warn("chat has no dialogue (a channel, or one sender only): 0 examples", "chat", c.Name, "id", c.ID, "type", c.Type)
		}
	}
	return res.Stats, WriteDir(job.Out, res, job.Meta)
}

func openSource(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is a directory, not an export file", path)
	}
	return f, fi.Size(), nil
}

// ctxReader stops reading once ctx ends, so an interrupt does not wait for
// the end of a chat of hundreds of MB.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

func (job Job) progressReader(r io.Reader, size int64) io.Reader {
	step := job.ProgressStep
	if step <= 0 {
		step = 1 << 20
	}
	return &ProgressReader{R: r, Step: step, Report: func(n int64) { job.Progress(n, size) }}
}

// read fills the builder; chats that gave nothing are appended to empty
// (names only), to be reported when others did give examples.
func (job Job) read(ctx context.Context, in io.Reader, b *Builder, empty *[]Chat) (ReadStats, error) {
	if job.Source.CSV != "" {
		return ScanCSV(in, job.CSVRoles, job.Anonymize, b.Skip, func(s Sample) error {
			return b.Add([]Sample{s})
		})
	}
	senders := newSenderIndex(job.Dialogue.Speaker)
	next := 0
	st, err := ReadTelegram(in, job.Telegram, func(c Chat) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		senders.add(c.Messages)
		n := 0
		var err error
		next, err = EachSample(c.Messages, job.Dialogue, next, b.Skip, func(s Sample) error {
			n++
			return b.Add([]Sample{s})
		})
		if err != nil {
			return err
		}
		if n == 0 {
			*empty = append(*empty, Chat{ID: c.ID, Name: c.Name, Type: c.Type}) // not its messages
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	return st, senders.check()
}

// check refuses a result with nothing to train on, saying why.
func (r Result) check(speaker string) error {
	st := r.Stats
	dropped := 0
	for _, n := range st.Dropped {
		dropped += n
	}
	switch {
	case st.Examples == 0 && dropped > 0:
		return fmt.Errorf("%w: all %d dialogue samples were too long for the context (dropped: %v; see --context, --max-new-tokens)", ErrNoExamples, dropped, st.Dropped)
	case st.Examples == 0 && st.Messages == 0:
		return fmt.Errorf("%w: no text message found (skipped: %v)", ErrNoExamples, st.Skipped)
	case st.Examples == 0 && speaker != "":
		return fmt.Errorf("%w: %q never answers anyone else (%d messages; skipped: %v)", ErrNoExamples, speaker, st.Messages, st.Skipped)
	case st.Examples == 0:
		return fmt.Errorf("%w: no dialogue among %d messages (a channel, or a chat with one sender?); skipped: %v", ErrNoExamples, st.Messages, st.Skipped)
	case st.TrainExamples == 0:
		return fmt.Errorf("%w: all %d examples went to validation (one dialogue only?); lower --valid-fraction", ErrNoExamples, st.Examples)
	}
	return nil
}
