package engine

import "testing"

type idText map[int]string

func (m idText) Encode(string) []int     { return nil }
func (m idText) EncodeText(string) []int { return nil }
func (m idText) DecodeReply(ids []int) string {
	s := ""
	for _, id := range ids {
		s += m[id]
	}
	return s
}
func (m idText) TokenID(string) (int, bool) { return 0, true }

func TestPickReply(t *testing.T) {
	codec := idText{1: "one", 2: "two", 3: ""}
	cases := []struct {
		name string
		out  []Completion
		want string
	}{
		{"best mean log-probability", []Completion{{IDs: []int{1}, MeanLogProb: -2}, {IDs: []int{2}, MeanLogProb: -1}}, "two"},
		{"empty text never wins", []Completion{{IDs: []int{3}, MeanLogProb: -0.1}, {IDs: []int{1}, MeanLogProb: -5}}, "one"},
		{"all empty", []Completion{{IDs: []int{3}}, {IDs: nil}}, ""},
		{"first of equals", []Completion{{IDs: []int{1}, MeanLogProb: -1}, {IDs: []int{2}, MeanLogProb: -1}}, "one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := pickReply(codec, c.out).Text; got != c.want {
				t.Errorf("picked %q, want %q", got, c.want)
			}
		})
	}
}
