package train

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Event is one line of the trainer's progress protocol (finetune.py
// --progress-json): one JSON object per stdout line. Unknown events and
// fields are ignored, so the trainer can add them freely.
type Event struct {
	Event         string   `json:"event"`
	Step          int      `json:"step"`
	TotalSteps    int      `json:"total_steps"`
	TokensPerStep float64  `json:"tokens_per_step"`
	Loss          *float64 `json:"loss"`
	LR            float64  `json:"lr"`
	TokensPerS    float64  `json:"tokens_per_s"`
	ElapsedS      float64  `json:"elapsed_s"`
	ETAS          *float64 `json:"eta_s"`
	ValidLoss     *float64 `json:"valid_loss"`
	ValidPPL      *float64 `json:"valid_ppl"`
	Report        string   `json:"report"`
	Message       string   `json:"message"`

	// Summary is set for finetune.py's last stdout line when it predates
	// the protocol: a JSON object without "event".
	Summary map[string]any `json:"-"`
}

// ParseStdout reads one stdout line of the trainer. ok is false for lines
// that are not a JSON object; those belong in the log.
func ParseStdout(line string) (ev Event, ok bool) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "{") {
		return Event{}, false
	}
	if json.Unmarshal([]byte(line), &ev) != nil {
		return Event{}, false
	}
	if ev.Event == "" {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			return Event{}, false
		}
		ev.Event, ev.Summary = "summary", m
	}
	return ev, true
}

// stepLine is the human progress line of a finetune.py without
// --progress-json: "finetune: step 10/30 loss 3.2105 lr 1.00e-04 tok/s 812
// elapsed 0:00:12 eta 0:00:24". Reading it keeps the display live with
// that version too.
var stepLine = regexp.MustCompile(`step (\d+)/(\d+) loss ([0-9.eE+-]+|nan|inf) lr \S+ tok/s (\d+) elapsed (\d+:\d\d:\d\d) eta (\d+:\d\d:\d\d)`)

// ParseStderrStep reads a human progress line as a step event.
func ParseStderrStep(line string) (Event, bool) {
	m := stepLine.FindStringSubmatch(line)
	if m == nil {
		return Event{}, false
	}
	step, _ := strconv.Atoi(m[1])
	total, _ := strconv.Atoi(m[2])
	loss, _ := strconv.ParseFloat(m[3], 64)
	rate, _ := strconv.ParseFloat(m[4], 64)
	eta := hms(m[6]).Seconds()
	return Event{Event: "step", Step: step, TotalSteps: total, Loss: &loss, TokensPerS: rate, ElapsedS: hms(m[5]).Seconds(), ETAS: &eta}, true
}

func hms(s string) time.Duration {
	var h, m, sec int
	parts := strings.Split(s, ":")
	if len(parts) == 3 {
		h, _ = strconv.Atoi(parts[0])
		m, _ = strconv.Atoi(parts[1])
		sec, _ = strconv.Atoi(parts[2])
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second
}
