package torch

import (
	"errors"
	"strings"
	"testing"
)

// A model that calls an op the loaded bridge lacks (exported by a newer
// export.py) fails with one line that names the op and the fix, not
// TorchScript's many-line report.
func TestExplainLoadErrorNamesTheMissingOp(t *testing.T) {
	// As a bridge built before attend_one reported it (the start of 20 lines).
	report := errors.New("load model: \nUnknown builtin op: dialogbot::attend_one.\n" +
		"Could not find any similar ops to dialogbot::attend_one. This op may not exist or may not be currently supported in TorchScript.\n" +
		":\n  File \"code/__torch__/gpt2.py\", line 10\n")
	got := explainLoadError(report).Error()
	for _, want := range []string{"dialogbot::attend_one", "rebuild the bridge (make build)", "export.py"} {
		if !strings.Contains(got, want) {
			t.Errorf("explained error %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "\n") {
		t.Errorf("explained error has several lines: %q", got)
	}
	other := errors.New("load model: open file failed")
	if explainLoadError(other) != other {
		t.Errorf("an unrelated error was rewritten: %v", explainLoadError(other))
	}
}
