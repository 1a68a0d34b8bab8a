package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Report is what training achieved, from finetune.py's report.json (or,
// from a finetune.py that writes none, its summary.json).
type Report struct {
	Files      []string // report files copied into the model directory
	PPLBefore  *float64 `json:"valid_ppl_before"`
	PPLAfter   *float64 `json:"valid_ppl_after"`
	TokensPerS float64  `json:"train_tokens_per_s"`
	Steps      int      `json:"steps"`
}

// isReportFile: report.json, report.md or .html, loss.svg or .png.
func isReportFile(name string) bool {
	return strings.HasPrefix(name, "report.") || strings.HasPrefix(name, "loss.") || strings.HasPrefix(name, "loss_")
}

// installReport copies the report files of the training directory into
// out, beside the model, and reads the numbers.
func installReport(from, out string) (Report, error) {
	entries, err := os.ReadDir(from)
	if err != nil {
		return Report{}, err
	}
	var rep Report
	for _, e := range entries {
		if !e.Type().IsRegular() || !isReportFile(e.Name()) {
			continue
		}
		if err := copyFile(filepath.Join(from, e.Name()), filepath.Join(out, e.Name())); err != nil {
			return rep, err
		}
		rep.Files = append(rep.Files, filepath.Join(out, e.Name()))
	}
	err = readJSON(filepath.Join(from, "report.json"), &rep)
	if errors.Is(err, os.ErrNotExist) {
		var sum struct {
			PPLBefore  *float64 `json:"valid_ppl_before"`
			PPLAfter   *float64 `json:"valid_ppl_after"`
			TokensPerS float64  `json:"tokens_per_s"`
			Steps      int      `json:"steps"`
		}
		err = readJSON(filepath.Join(from, "summary.json"), &sum)
		rep.PPLBefore, rep.PPLAfter, rep.TokensPerS, rep.Steps = sum.PPLBefore, sum.PPLAfter, sum.TokensPerS, sum.Steps
	}
	return rep, err
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err = io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
