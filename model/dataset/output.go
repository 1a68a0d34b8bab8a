package dataset

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// FormatVersion of the dataset directory (FORMAT.md).
const FormatVersion = 1

// Meta is meta.json: what finetune.py checks before training.
type Meta struct {
	FormatVersion   int    `json:"format_version"`
	PromptFormat    string `json:"prompt_format"`
	Tokenizer       string `json:"tokenizer"`
	TokenizerSHA256 string `json:"tokenizer_sha256"`
	VocabSize       int    `json:"vocab_size"`
	ContextLength   int    `json:"context_length"`
	MaxNewTokens    int    `json:"max_new_tokens"`
	MaxTurns        int    `json:"max_turns"`
	TrainExamples   int    `json:"train_examples"`
	ValidExamples   int    `json:"valid_examples"`
}

// WriteDir writes the dataset directory described in FORMAT.md. The files
// go to a temporary directory beside dir, which replaces dir only once all
// of them are written: a failure leaves an older dataset in dir intact, never
// new splits beside an old meta.json. An existing dir that holds anything but
// a dataset's files is refused rather than replaced.
func WriteDir(dir string, r Result, meta Meta) error {
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	if err := writeFiles(tmp, r, meta); err != nil {
		return err
	}
	return replaceDir(tmp, dir)
}

func writeFiles(dir string, r Result, meta Meta) error {
	meta.FormatVersion, meta.TrainExamples, meta.ValidExamples = FormatVersion, len(r.Train), len(r.Valid)
	for split, ex := range map[string][]Example{"train": r.Train, "valid": r.Valid} {
		if err := writeSplit(dir, split, r, ex, meta.VocabSize); err != nil {
			return err
		}
	}
	if err := writeJSON(filepath.Join(dir, "stats.json"), r.Stats); err != nil {
		return err
	}
	if err := writePreview(filepath.Join(dir, "preview.jsonl"), r.Preview); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, "meta.json"), meta)
}

// datasetFiles are the names WriteDir writes.
var datasetFiles = map[string]bool{
	"meta.json": true, "stats.json": true, "preview.jsonl": true,
	"train.tokens.u32": true, "train.mask.u8": true, "train.offsets.u64": true,
	"valid.tokens.u32": true, "valid.mask.u8": true, "valid.offsets.u64": true,
}

// checkReplaceable allows a missing dir, an empty one, or an older dataset.
func checkReplaceable(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("output directory: %w", err)
	}
	for _, e := range entries {
		if !datasetFiles[e.Name()] {
			return fmt.Errorf("output directory %s holds %s, which is not a dataset file: give a new or empty directory", dir, e.Name())
		}
	}
	return nil
}

// replaceDir puts the complete directory tmp in place of dir. The old dir
// is moved aside first and removed last; should the second rename fail, it
// is moved back.
func replaceDir(tmp, dir string) error {
	old := ""
	if _, err := os.Stat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("output directory: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			err = errors.Join(err, os.Rename(old, dir))
		}
		return fmt.Errorf("output directory: %w", err)
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// writeSplit writes SPLIT.tokens.u32, SPLIT.mask.u8 and SPLIT.offsets.u64.
func writeSplit(dir, split string, r Result, ex []Example, vocab int) (err error) {
	files := make([]*bufFile, 3)
	for i, ext := range []string{"tokens.u32", "mask.u8", "offsets.u64"} {
		if files[i], err = createBuf(filepath.Join(dir, split+"."+ext)); err != nil {
			return err
		}
		defer func(f *bufFile) { err = errors.Join(err, f.close()) }(files[i])
	}
	tokens, mask, offsets := files[0], files[1], files[2]
	var off uint64
	offsets.write(off)
	var buf []uint32
	for _, e := range ex {
		ids, err := r.ids(e, buf)
		if err != nil {
			return err
		}
		buf = ids
		if err := checkVocab(ids, vocab); err != nil {
			return err
		}
		tokens.write(ids)
		mask.write(LossMask(len(ids), e.PromptLen))
		off += uint64(len(ids))
		offsets.write(off)
	}
	return nil
}

func checkVocab(ids []uint32, vocab int) error {
	for _, id := range ids {
		if vocab > 0 && int(id) >= vocab {
			return fmt.Errorf("token id %d not below the vocabulary size %d", id, vocab)
		}
	}
	return nil
}

// bufFile is a buffered file that keeps its first write error, so the
// writing loop stays plain and close reports it.
type bufFile struct {
	f   *os.File
	w   *bufio.Writer
	err error
}

func createBuf(path string) (*bufFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("dataset output: %w", err)
	}
	return &bufFile{f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

func (b *bufFile) write(v any) {
	if b.err == nil {
		b.err = binary.Write(b.w, binary.LittleEndian, v)
	}
}

func (b *bufFile) close() error {
	err := errors.Join(b.err, b.w.Flush(), b.f.Close())
	if err != nil {
		return fmt.Errorf("writing %s: %w", b.f.Name(), err)
	}
	return nil
}

// writeJSON writes v indented, with names like "<bot>" left readable.
func writeJSON(path string, v any) error {
	f, err := createBuf(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f.w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	f.err = enc.Encode(v)
	return f.close()
}

func writePreview(path string, lines []PreviewLine) error {
	f, err := createBuf(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f.w)
	enc.SetEscapeHTML(false)
	for _, l := range lines {
		if f.err == nil {
			f.err = enc.Encode(l)
		}
	}
	return f.close()
}

// TokenizerMeta is the Meta of a dataset tokenized with the tokenizer file
// at path, which finetune.py checks against the model's (by its SHA-256).
func TokenizerMeta(path string, cfg Config, vocab int) (Meta, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Meta{}, fmt.Errorf("tokenizer: %w", err)
	}
	sum := sha256.Sum256(data)
	return Meta{
		PromptFormat: string(cfg.Format), Tokenizer: path, TokenizerSHA256: hex.EncodeToString(sum[:]),
		VocabSize: vocab, ContextLength: cfg.Limits.Context, MaxNewTokens: cfg.Limits.MaxNewTokens, MaxTurns: cfg.Limits.MaxTurns,
	}, nil
}
