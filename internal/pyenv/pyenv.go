// Package pyenv finds what dialogbot needs to run the project's Python
// scripts (model/python): a Python that imports torch, and the scripts.
package pyenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Candidates are the interpreters tried, in order: $PYTHON, python3 on PATH,
// then Debian's /usr/bin/python3 (where python3-torch installs torch; a
// python3 earlier on PATH, from a venv or pyenv, often lacks it).
func Candidates() []string {
	var out []string
	for _, p := range []string{os.Getenv("PYTHON"), "python3", "/usr/bin/python3"} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// probe is what a Python must run for the scripts: torch (used, not just
// imported) and numpy.
const probe = "import numpy, torch; torch.zeros(1)"

// Python returns the first candidate that imports torch and numpy.
func Python(ctx context.Context) (string, error) {
	var tried []string
	for _, p := range Candidates() {
		// Run from /: in the repository "import torch" would find the Go
		// package's torch/ folder as a namespace package and fail later.
		cmd := exec.CommandContext(ctx, p, "-c", probe)
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		tried = append(tried, fmt.Sprintf("%s (%s)", p, lastLine(out, err)))
	}
	return "", fmt.Errorf("no Python with torch and numpy found; tried %s. Install Debian's python3-torch and python3-numpy, or set PYTHON", strings.Join(tried, ", "))
}

func lastLine(out []byte, err error) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return err.Error()
}

// EnvScriptsDir names the folder of the Python scripts, overriding the search.
const EnvScriptsDir = "DIALOGBOT_PYTHON_DIR"

// marker is a script every scripts folder has.
const marker = "finetune.py"

// ScriptsDir finds model/python: the given dir, else $DIALOGBOT_PYTHON_DIR,
// else beside the executable (bin/dialogbot of a checkout: ../model/python;
// an installed copy: model/python next to it), else under the working
// directory. The result is absolute.
func ScriptsDir(given string) (string, error) {
	if given == "" {
		given = os.Getenv(EnvScriptsDir)
	}
	if given != "" {
		return checkScripts(given)
	}
	var roots []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		roots = append(roots, filepath.Dir(filepath.Dir(exe)), filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		roots = append(roots, wd)
	}
	for _, r := range roots {
		if dir, err := checkScripts(filepath.Join(r, "model", "python")); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("the Python scripts (model/python/%s) were not found beside the executable or in %v; set %s or --python-dir", marker, roots, EnvScriptsDir)
}

func checkScripts(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(abs, marker)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s has no %s: not the project's model/python folder", dir, marker)
		}
		return "", err
	}
	return abs, nil
}
