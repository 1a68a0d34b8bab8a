package dataset

import (
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dialogbot/dialogbot/model/dialog"
)

func u(s string) dialog.Turn { return dialog.Turn{Speaker: dialog.User, Text: s} }
func b(s string) dialog.Turn { return dialog.Turn{Speaker: dialog.Bot, Text: s} }

// brief is what a test compares of a Sample.
type brief struct {
	Dialogue int
	Speaker  string
	Context  []dialog.Turn
	Reply    string
}

func briefs(ss []Sample) []brief {
	out := make([]brief, len(ss))
	for i, s := range ss {
		out[i] = brief{s.Dialogue, s.Speaker, s.Context, s.Reply}
	}
	return out
}

func TestSamples(t *testing.T) {
	const (
		hello  = "Привет всем!"
		boris  = "Привет, Аня\nкак дела?" // two messages of one sender merged
		anya   = "😀\nОтлично! Пиши на anya@example.com или звони +7 999 123-45-67"
		sunset = "Смотрите, какой закат https://example.org/sunset"
		newDay = "Новый день"
		thanks = "Хорошо, спасибо"
		andYou = "А ты?"
	)
	all := []brief{
		{0, "Борис", []dialog.Turn{u(hello)}, boris},                    // reply to 2: its chain
		{0, "Аня", []dialog.Turn{b(hello), u(boris)}, anya},             // reply to 3, which replies to 2
		{0, "Вика", []dialog.Turn{u(hello), u(boris), u(anya)}, sunset}, // no reply: the segment so far
		{1, "Аня", []dialog.Turn{b(hello), u(boris)}, thanks},           // reply into the previous dialogue
		{1, "Борис", []dialog.Turn{b(newDay), u(thanks)}, andYou},       // reply to a message not exported
	}
	tests := []struct {
		name    string
		opt     DialogueOptions
		want    []brief
		skipped map[string]int
		next    int
	}{
		{"everyone", DialogueOptions{Gap: 30 * time.Minute, MaxTurns: 6}, all, map[string]int{"no_context": 2}, 2},
		{"speaker by name", DialogueOptions{Gap: 30 * time.Minute, Speaker: "аня"}, []brief{all[1], all[3]}, map[string]int{"no_context": 1}, 2},
		{"speaker by id", DialogueOptions{Gap: 30 * time.Minute, Speaker: "2"}, []brief{all[0], all[4]}, map[string]int{"no_context": 1}, 2},
		{"max turns cuts the oldest", DialogueOptions{Gap: 30 * time.Minute, MaxTurns: 1, Speaker: "user3"},
			[]brief{{0, "Вика", []dialog.Turn{u(anya)}, sunset}}, map[string]int{}, 2},
		{"long gap: one dialogue", DialogueOptions{Gap: 2 * time.Hour, Speaker: "Борис"}, []brief{
			all[0],
			{0, "Борис", []dialog.Turn{u(hello), b(boris), u(anya), u(sunset)}, newDay},
			{0, "Борис", []dialog.Turn{u(hello), b(boris), u(anya), u(sunset), b(newDay), u(thanks)}, andYou},
		}, map[string]int{}, 1},
	}
	chats, _ := readChats(t, "single_new.json", TelegramOptions{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			skipped := map[string]int{}
			got, next := Samples(chats[0].Messages, tc.opt, 0, func(r string) { skipped[r]++ })
			if g := briefs(got); !reflect.DeepEqual(g, tc.want) {
				t.Errorf("samples:\n got %+v\nwant %+v", g, tc.want)
			}
			if !reflect.DeepEqual(skipped, tc.skipped) {
				t.Errorf("skipped %v, want %v", skipped, tc.skipped)
			}
			if next != tc.next {
				t.Errorf("next dialogue %d, want %d", next, tc.next)
			}
		})
	}
}

func TestSamplesEdgeCases(t *testing.T) {
	at := func(min int) time.Time { return time.Date(2024, 1, 1, 0, min, 0, 0, time.UTC) }
	msg := func(id int64, min int, from string, reply int64, text string) Message {
		return Message{ID: id, Time: at(min), SenderID: from, Sender: from, Text: text, ReplyTo: reply}
	}
	tests := []struct {
		name    string
		msgs    []Message
		want    []brief
		skipped map[string]int
	}{
		{"channel: one sender, no dialogue",
			[]Message{msg(1, 0, "news", 0, "a"), msg(2, 1, "news", 0, "b"), msg(3, 90, "news", 0, "c")},
			nil, map[string]int{"no_context": 2}},
		{"self reply is not a dialogue",
			[]Message{msg(1, 0, "x", 0, "q"), msg(2, 1, "y", 0, "a"), msg(3, 2, "x", 0, "b"), msg(4, 3, "y", 2, "own")},
			[]brief{{0, "y", []dialog.Turn{u("q")}, "a"}, {0, "x", []dialog.Turn{b("q"), u("a")}, "b"}},
			map[string]int{"no_context": 1, "self_reply": 1}},
		{"replies to different messages are not merged",
			[]Message{msg(1, 0, "x", 0, "q1"), msg(2, 1, "x", 0, "q2"), msg(3, 2, "y", 1, "a1"), msg(4, 3, "y", 2, "a2")},
			[]brief{{0, "y", []dialog.Turn{u("q1\nq2")}, "a1"}, {0, "y", []dialog.Turn{u("q1\nq2")}, "a2"}},
			map[string]int{"no_context": 1}},
		{"out of order messages are sorted by time",
			[]Message{msg(2, 1, "y", 0, "a"), msg(1, 0, "x", 0, "q")},
			[]brief{{0, "y", []dialog.Turn{u("q")}, "a"}},
			map[string]int{"no_context": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			skipped := map[string]int{}
			got, _ := Samples(tc.msgs, DialogueOptions{Gap: 30 * time.Minute}, 0, func(r string) { skipped[r]++ })
			if g := briefs(got); !reflect.DeepEqual(g, tc.want) && !(len(g) == 0 && len(tc.want) == 0) {
				t.Errorf("samples:\n got %+v\nwant %+v", g, tc.want)
			}
			if !reflect.DeepEqual(skipped, tc.skipped) {
				t.Errorf("skipped %v, want %v", skipped, tc.skipped)
			}
		})
	}
}

// A channel is one long run of one sender's messages: merging them must not
// copy the growing turn once per message (quadratic time on a big export).
func TestSamplesLongRunLinear(t *testing.T) {
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	text := strings.Repeat("x", 200)
	msgs := make([]Message, 20000)
	for i := range msgs {
		msgs[i] = Message{ID: int64(i + 1), Time: t0.Add(time.Duration(i) * time.Minute), SenderID: "channel7", Text: text}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	samples, _ := Samples(msgs, DialogueOptions{Gap: time.Hour}, 0, func(string) {})
	runtime.ReadMemStats(&after)
	if len(samples) != 0 {
		t.Fatalf("a channel gave %d samples, want 0", len(samples))
	}
	// The merged text is 4 MB; quadratic merging allocates about 40 GB.
	if got := after.TotalAlloc - before.TotalAlloc; got > 100<<20 {
		t.Fatalf("merging 20000 messages allocated %d MB, want linear (< 100 MB)", got>>20)
	}
}
