package train

import "testing"

func TestParseStdout(t *testing.T) {
	tests := []struct {
		line  string
		ok    bool
		event string
	}{
		{`{"event":"step","step":3,"total_steps":30,"loss":3.2,"eta_s":12.5,"new_field":[1]}`, true, "step"},
		{`{"event":"future_thing"}`, true, "future_thing"},
		{`{"steps": 30, "valid_ppl_after": 40}`, true, "summary"},
		{`not json`, false, ""},
		{`{"event": truncated`, false, ""},
		{`[1, 2]`, false, ""},
		{``, false, ""},
	}
	for _, tc := range tests {
		ev, ok := ParseStdout(tc.line)
		if ok != tc.ok || ev.Event != tc.event {
			t.Errorf("%q: got %v %q, want %v %q", tc.line, ok, ev.Event, tc.ok, tc.event)
		}
	}
	ev, _ := ParseStdout(`{"event":"step","step":3,"total_steps":30,"loss":3.2,"eta_s":12.5}`)
	if ev.Step != 3 || ev.TotalSteps != 30 || *ev.Loss != 3.2 || *ev.ETAS != 12.5 {
		t.Errorf("got %+v", ev)
	}
}

func TestParseStderrStep(t *testing.T) {
	ev, ok := ParseStderrStep("finetune: step 10/30 loss 3.2105 lr 1.00e-04 tok/s 812 elapsed 0:01:12 eta 1:00:24")
	if !ok || ev.Step != 10 || ev.TotalSteps != 30 || *ev.Loss != 3.2105 || ev.TokensPerS != 812 || *ev.ETAS != 3624 || ev.ElapsedS != 72 {
		t.Errorf("got %v %+v", ok, ev)
	}
	if _, ok := ParseStderrStep("finetune: valid before step 0: loss 4.0 ppl 54.6"); ok {
		t.Error("a validation line read as a step")
	}
}
