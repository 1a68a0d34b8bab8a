package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/dialogbot/dialogbot/"

// TestPackageBoundaries holds the layout's dependency rules: the bot knows
// dialogues, not how they are generated; the dataset builder shares the
// tokenizer and prompt format with serving but not the engine; the model
// packages never reach libtorch or the bot; only torch uses cgo.
func TestPackageBoundaries(t *testing.T) {
	forbidden := map[string][]string{
		"bot":           {"model/engine", "model/sample", "model/tokenizer", "torch"},
		"model/dataset": {"model/engine", "model/sample", "torch", "bot"},
		"model":         {"torch", "bot"},
		"model/dialog":  {"torch", "bot", "model/engine", "model/sample", "model/tokenizer"},
		"model/engine":  {"torch", "bot"},
		"model/sample":  {"torch", "bot"},
	}
	for pkg, bad := range forbidden {
		deps := goList(t, "-deps", module+pkg)
		for _, b := range bad {
			if deps[module+b] {
				t.Errorf("%s depends on %s", pkg, b)
			}
		}
	}
	cgo := goListCgo(t)
	if len(cgo) != 1 || cgo[0] != module+"torch" {
		t.Errorf("packages that import \"C\": %v, want torch alone", cgo)
	}
}

func goList(t *testing.T, args ...string) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	set := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		set[strings.TrimSpace(sc.Text())] = true
	}
	return set
}

func goListCgo(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{if .CgoFiles}}{{.ImportPath}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}
