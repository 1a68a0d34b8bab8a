package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dialogbot/dialogbot/model/dialog"
)

// Meta is an exported model's dialogbot.json, written by model/python/export.py.
type Meta struct {
	FormatVersion int            `json:"format_version"`
	Architecture  string         `json:"architecture"`
	NLayer        int            `json:"n_layer"`
	NHead         int            `json:"n_head"`
	NEmbd         int            `json:"n_embd"`
	HeadDim       int            `json:"head_dim"`
	VocabSize     int            `json:"vocab_size"`
	NPositions    int            `json:"n_positions"`
	Dtype         string         `json:"dtype"`
	Quantize      string         `json:"quantize"`
	CPUOnly       bool           `json:"cpu_only"`
	PromptFormat  string         `json:"prompt_format"`
	EOSTokenID    int            `json:"eos_token_id"`
	SpecialTokens map[string]int `json:"special_tokens"`
	TorchVersion  string         `json:"torch_version"`
	Source        string         `json:"source"`
	// Int8 is set when the directory also has an int8 copy of the weights
	// (export.py --quantize both).
	Int8 *Int8Copy `json:"int8,omitempty"`
}

// Int8Copy is the int8 copy of a model's weights, with how closely it
// follows the float copy as export.py measured it.
type Int8Copy struct {
	File string `json:"file"` // beside model.pt, e.g. model.int8.pt
	// Top1Agreement is the share of RowsChecked step rows whose most
	// likely next token is the same as the float copy's.
	Top1Agreement   float64 `json:"top1_agreement"`
	RowsChecked     int     `json:"rows_checked"`
	MaxAbsLogitDiff float64 `json:"max_abs_logit_diff"`
}

// Files of an exported model directory.
const (
	MetaFile      = "dialogbot.json"
	WeightsFile   = "model.pt"
	TokenizerFile = "tokenizer.json"
)

// LoadMeta reads and checks DIR/dialogbot.json.
func LoadMeta(dir string) (Meta, error) {
	var m Meta
	path := filepath.Join(dir, MetaFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, fmt.Errorf("no exported model in %s (missing %s): export one with model/python/export.py", dir, MetaFile)
	}
	if err != nil {
		return m, fmt.Errorf("read model metadata: %w", err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("model metadata %s: %w", path, err)
	}
	if err := m.validate(); err != nil {
		return m, fmt.Errorf("model metadata %s: %w", path, err)
	}
	return m, nil
}

func (m Meta) validate() error {
	if m.FormatVersion != 1 {
		return fmt.Errorf("format_version %d not supported (want 1)", m.FormatVersion)
	}
	if m.Architecture != "gpt2" {
		return fmt.Errorf("architecture %q not supported (want gpt2)", m.Architecture)
	}
	if m.NLayer <= 0 || m.NHead <= 0 || m.HeadDim <= 0 || m.VocabSize <= 0 || m.NPositions <= 0 {
		return errors.New("n_layer, n_head, head_dim, vocab_size and n_positions must be positive")
	}
	if _, err := dialog.ParseFormat(m.PromptFormat); err != nil {
		return err
	}
	if c := m.Int8; c != nil {
		if c.File == "" || filepath.Base(c.File) != c.File || c.File == WeightsFile {
			return fmt.Errorf("int8.file %q must name another file in the model directory", c.File)
		}
		if c.Top1Agreement < 0 || c.Top1Agreement > 1 || c.RowsChecked <= 0 {
			return fmt.Errorf("int8: top1_agreement %g must be in 0..1 and rows_checked %d positive", c.Top1Agreement, c.RowsChecked)
		}
	}
	return nil
}

// Format is the model's prompt format.
func (m Meta) Format() dialog.Format {
	f, _ := dialog.ParseFormat(m.PromptFormat)
	return f
}
