package pyenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScriptsDir(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", "..", "model", "python"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ScriptsDir(filepath.Join("..", "..", "model", "python")); err != nil || got != repo {
		t.Errorf("given: %q, %v; want %q", got, err, repo)
	}
	t.Setenv(EnvScriptsDir, repo)
	if got, err := ScriptsDir(""); err != nil || got != repo {
		t.Errorf("from $%s: %q, %v", EnvScriptsDir, got, err)
	}
	empty := t.TempDir()
	t.Setenv(EnvScriptsDir, empty)
	if _, err := ScriptsDir(""); err == nil || !strings.Contains(err.Error(), "has no finetune.py") {
		t.Errorf("a folder without the scripts: %v", err)
	}
}

func TestScriptsDirBesideWorkingDirectory(t *testing.T) {
	t.Setenv(EnvScriptsDir, "")
	t.Chdir(filepath.Join("..", ".."))
	wd, _ := os.Getwd()
	if got, err := ScriptsDir(""); err != nil || got != filepath.Join(wd, "model", "python") {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestCandidatesOrder(t *testing.T) {
	t.Setenv("PYTHON", "/opt/py/bin/python")
	if got := strings.Join(Candidates(), " "); got != "/opt/py/bin/python python3 /usr/bin/python3" {
		t.Errorf("got %q", got)
	}
}

func TestPythonReportsWhatWasTried(t *testing.T) {
	t.Setenv("PYTHON", "/nonexistent/python")
	t.Setenv("PATH", t.TempDir())
	py, err := Python(t.Context())
	if err == nil {
		if py != "/usr/bin/python3" {
			t.Errorf("found %q", py)
		}
		return // Debian's python3-torch is installed: it was found, as it should be
	}
	if !strings.Contains(err.Error(), "/nonexistent/python") || !strings.Contains(err.Error(), "set PYTHON") {
		t.Errorf("got %v", err)
	}
}
