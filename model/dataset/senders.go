package dataset

import (
	"fmt"
	"sort"
	"strings"
)

// senderIndex counts messages per sender, so that a --speaker that matches
// nobody (a typo, a changed display name) is answered with who is there.
type senderIndex struct {
	speaker string
	matched bool
	counts  map[string]int // "Name (id)" -> messages
}

func newSenderIndex(speaker string) *senderIndex {
	return &senderIndex{speaker: speaker, counts: map[string]int{}}
}

func (s *senderIndex) add(msgs []Message) {
	if s.speaker == "" {
		return
	}
	for _, m := range msgs {
		if matchesSender(s.speaker, m.senderKey(), m.Sender) {
			s.matched = true
		}
		s.counts[senderLabel(m)]++
	}
}

func senderLabel(m Message) string {
	switch {
	case m.Sender == "":
		return m.SenderID
	case m.SenderID == "":
		return fmt.Sprintf("%q", m.Sender)
	}
	return fmt.Sprintf("%q (%s)", m.Sender, m.SenderID)
}

// check fails when a speaker was asked for and nobody matched it.
func (s *senderIndex) check() error {
	if s.speaker == "" || s.matched {
		return nil
	}
	if len(s.counts) == 0 {
		return fmt.Errorf("--speaker %q: the export has no text messages", s.speaker)
	}
	return fmt.Errorf("--speaker %q matches no sender (give a name or an id); senders by messages: %s", s.speaker, s.top(15))
}

func (s *senderIndex) top(n int) string {
	names := make([]string, 0, len(s.counts))
	for k := range s.counts {
		names = append(names, k)
	}
	sort.Slice(names, func(a, b int) bool {
		ca, cb := s.counts[names[a]], s.counts[names[b]]
		return ca > cb || (ca == cb && names[a] < names[b])
	})
	var parts []string
	for _, k := range names[:min(n, len(names))] {
		parts = append(parts, fmt.Sprintf("%s %d", k, s.counts[k]))
	}
	out := strings.Join(parts, ", ")
	if len(names) > n {
		out += fmt.Sprintf(" and %d more", len(names)-n)
	}
	return out
}
