package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// state is WORK/state.json: for each finished stage, the key of the inputs
// it was made from. A stage whose key still matches is skipped on the next
// run; one whose inputs changed is done again.
type state struct {
	Dataset  string `json:"dataset,omitempty"`
	Base     string `json:"finetune_base,omitempty"` // the dataset and model the checkpoint belongs to
	Finetune string `json:"finetune,omitempty"`
	Export   string `json:"export,omitempty"`
}

func loadState(path string) (state, error) {
	var st state
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return state{}, fmt.Errorf("%s: %w (delete it to start over)", path, err)
	}
	return st, nil
}

// save writes the state through a temporary file, so a crash leaves the
// previous one.
func (st state) save(path string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// key hashes v's Go syntax representation (%#v: every field, by name).
func key(v any) string {
	h := sha256.New()
	fmt.Fprintf(h, "%#v", v)
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// fileKey identifies a file's version without reading it: a re-exported
// chat has another size or time.
type fileKey struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
}

func statKey(path string) (fileKey, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fileKey{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fileKey{}, err
	}
	return fileKey{abs, fi.Size(), fi.ModTime().UnixNano()}, nil
}
