package dataset

import (
	"sort"
	"strings"
	"time"

	"github.com/dialogbot/dialogbot/model/dialog"
)

// DialogueOptions say how a chat's messages become dialogues.
type DialogueOptions struct {
	Gap      time.Duration // a pause longer than this starts a new dialogue
	Speaker  string        // whose replies the bot learns (name or id); "" means everyone
	MaxTurns int           // context turns looked at per reply (the prompt keeps at most this many)
}

// Sample is one reply with the dialogue before it, not yet tokenized.
type Sample struct {
	Time     time.Time     // when the reply was sent; orders the train/valid split
	Dialogue int           // the dialogue (time-gap segment) the reply belongs to
	Speaker  string        // who wrote the reply, for stats
	Context  []dialog.Turn // oldest first; the reply's author is dialog.Bot, everyone else dialog.User
	Reply    string
}

// turn is a run of consecutive messages of one sender, merged.
type turn struct {
	sender, name string
	text         string
	time         time.Time
	replyTo      int64
	segment      int
}

// Samples turns a chat into samples: every turn by the chosen speaker that
// has someone else's turn before it. A reply's context is its chain of
// replied-to turns; other turns take the turns before them in their
// time-gap segment. Segments are numbered from firstSegment, so several chats
// get distinct dialogue numbers; the next free number is returned.
func Samples(msgs []Message, opt DialogueOptions, firstSegment int, skipped func(reason string)) ([]Sample, int) {
	var out []Sample
	next, _ := EachSample(msgs, opt, firstSegment, skipped, func(s Sample) error {
		out = append(out, s)
		return nil
	})
	return out, next
}

// EachSample is Samples passing each sample on as it is made, so a chat of
// hundreds of MB never has all its samples in memory at once. It may sort
// msgs by time in place.
func EachSample(msgs []Message, opt DialogueOptions, firstSegment int, skipped func(reason string), each func(Sample) error) (int, error) {
	turns, byMsg := mergeTurns(sortedByTime(msgs), opt.Gap, firstSegment)
	for i, t := range turns {
		if !matchesSender(opt.Speaker, t.sender, t.name) {
			continue
		}
		ctx := contextTurns(turns, byMsg, i, opt.MaxTurns)
		s, reason := sampleOf(turns, ctx, i)
		if reason != "" {
			skipped(reason)
			continue
		}
		if err := each(s); err != nil {
			return 0, err
		}
	}
	next := firstSegment
	if len(turns) > 0 {
		next = turns[len(turns)-1].segment + 1
	}
	return next, nil
}

// sortedByTime sorts msgs by time, stably and in place; exports are almost
// always in order already, which costs one pass.
func sortedByTime(msgs []Message) []Message {
	less := func(i, j int) bool { return msgs[i].Time.Before(msgs[j].Time) }
	if !sort.SliceIsSorted(msgs, less) {
		sort.SliceStable(msgs, less)
	}
	return msgs
}

// mergeTurns groups messages into turns and turns into time-gap segments. A
// message joins the previous turn when it has the same sender, comes within
// the gap and does not reply to something else than that turn does.
func mergeTurns(msgs []Message, gap time.Duration, segment int) ([]turn, map[int64]int) {
	var turns []turn
	var parts [][]string // each turn's texts, joined once at the end: += copies quadratically in a channel's long runs
	byMsg := make(map[int64]int, len(msgs))
	for i, m := range msgs {
		if i > 0 && m.Time.Sub(msgs[i-1].Time) > gap {
			segment++
		}
		if n := len(turns); n > 0 && joins(turns[n-1], m, byMsg, n-1, segment) {
			parts[n-1] = append(parts[n-1], m.Text)
			byMsg[m.ID] = n - 1
			continue
		}
		byMsg[m.ID] = len(turns)
		turns = append(turns, turn{sender: m.senderKey(), name: m.Sender, time: m.Time, replyTo: m.ReplyTo, segment: segment})
		parts = append(parts, []string{m.Text})
	}
	for k := range turns {
		turns[k].text = strings.Join(parts[k], "\n")
	}
	return turns, byMsg
}

func joins(t turn, m Message, byMsg map[int64]int, idx, segment int) bool {
	if t.segment != segment || t.sender != m.senderKey() {
		return false
	}
	if m.ReplyTo == 0 || m.ReplyTo == t.replyTo {
		return true
	}
	j, ok := byMsg[m.ReplyTo]
	return ok && j == idx
}

// contextTurns gives the indices (oldest first) of the turns that turn i
// answers: the reply chain when it replies to a message of the chat, else the
// turns before it in its segment (a reply to a message outside the export
// falls back to those too). At most maxTurns (0: no limit).
func contextTurns(turns []turn, byMsg map[int64]int, i, maxTurns int) []int {
	var rev []int
	if j, ok := byMsg[turns[i].replyTo]; ok && turns[i].replyTo != 0 && j < i {
		for full := false; !full; {
			rev = append(rev, j)
			full = maxTurns > 0 && len(rev) >= maxTurns
			next, ok := byMsg[turns[j].replyTo]
			if !ok || turns[j].replyTo == 0 || next >= j { // next >= j: no cycles
				break
			}
			j = next
		}
	} else {
		for j := i - 1; j >= 0 && turns[j].segment == turns[i].segment; j-- {
			if maxTurns > 0 && len(rev) >= maxTurns {
				break
			}
			rev = append(rev, j)
		}
	}
	for a, b := 0, len(rev)-1; a < b; a, b = a+1, b-1 {
		rev[a], rev[b] = rev[b], rev[a]
	}
	return rev
}

// sampleOf labels the context turns for reply i (its author is the bot,
// everyone else the user, as in serving) and merges neighbours of one sender
// that a reply chain can bring together.
func sampleOf(turns []turn, ctx []int, i int) (Sample, string) {
	if len(ctx) == 0 {
		return Sample{}, "no_context"
	}
	t := turns[i]
	if turns[ctx[len(ctx)-1]].sender == t.sender {
		return Sample{}, "self_reply"
	}
	var out []dialog.Turn
	prev := ""
	for k, j := range ctx {
		c := turns[j]
		if k > 0 && c.sender == prev {
			out[len(out)-1].Text += "\n" + c.text
			continue
		}
		sp := dialog.User
		if c.sender == t.sender {
			sp = dialog.Bot
		}
		out = append(out, dialog.Turn{Speaker: sp, Text: c.text})
		prev = c.sender
	}
	return Sample{Time: t.time, Dialogue: t.segment, Speaker: speakerName(t), Context: out, Reply: strings.TrimSpace(t.text)}, ""
}

func speakerName(t turn) string {
	if t.name != "" {
		return t.name
	}
	return t.sender
}
