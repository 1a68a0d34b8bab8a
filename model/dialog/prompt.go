package dialog

import (
	"errors"
	"fmt"
	"strings"
)

// Speaker says who wrote a turn. The bot is always the second speaker of the
// ruDialoGPT format; every other person in a chat is the first speaker, in
// serving and in the training data alike.
type Speaker int

const (
	User Speaker = iota // @@ПЕРВЫЙ@@: the person (or people) talking to the bot
	Bot                 // @@ВТОРОЙ@@: the bot, the speaker the model generates
)

// Turn is one message of a dialogue. Text is stored trimmed.
type Turn struct {
	Speaker Speaker `json:"speaker"`
	Text    string  `json:"text"`
}

// Encoder turns text into token ids. Encode recognises the special tokens
// of the prompt format inside its text, and is used only for the format's
// own tags; EncodeText treats everything as plain text, and is used for what
// people wrote, so a message cannot forge a turn (tokenizer.Tokenizer is one).
type Encoder interface {
	Encode(special string) []int
	EncodeText(text string) []int
}

// Format names a dialogue prompt format. It is defined once, here, and used
// by serving (chat, serve), by the dataset builder and, through the golden
// examples in testdata/prompt_golden.json, checked by the Python side too.
type Format string

const (
	// FormatRuDialoGPT: "@@ПЕРВЫЙ@@ привет @@ВТОРОЙ@@ привет @@ПЕРВЫЙ@@ как дела? @@ВТОРОЙ@@".
	FormatRuDialoGPT Format = "rudialogpt"
	// FormatDialoGPT (Microsoft): "привет<|endoftext|>привет<|endoftext|>как дела?<|endoftext|>".
	FormatDialoGPT Format = "dialogpt"
)

const (
	TagFirst  = "@@ПЕРВЫЙ@@"
	TagSecond = "@@ВТОРОЙ@@"
	EOS       = "<|endoftext|>"
)

// ErrPromptTooLong is returned when the newest message alone does not fit in
// the model's context; it is never cut, so the caller must refuse it.
var ErrPromptTooLong = errors.New("message too long for the model's context")

// ParseFormat checks a format name from config or model metadata.
func ParseFormat(name string) (Format, error) {
	switch f := Format(name); f {
	case FormatRuDialoGPT, FormatDialoGPT:
		return f, nil
	case "":
		return FormatRuDialoGPT, nil
	}
	return "", fmt.Errorf("unknown prompt format %q (want %q or %q)", name, FormatRuDialoGPT, FormatDialoGPT)
}

// StopStrings are the special tokens that end a generated reply.
func (f Format) StopStrings() []string {
	if f == FormatDialoGPT {
		return []string{EOS}
	}
	return []string{EOS, TagFirst, TagSecond}
}

func tag(s Speaker) string {
	if s == Bot {
		return TagSecond
	}
	return TagFirst
}

// TurnText is the text of one turn inside a prompt. Segments are cut at
// special tokens, so encoding each turn alone gives exactly the ids of
// encoding the joined prompt; that is what lets BuildPrompt count tokens per
// turn. The trailing space of the ruDialoGPT form separates it from the next tag.
func (f Format) TurnText(t Turn) string {
	if f == FormatDialoGPT {
		return t.Text + EOS
	}
	return tag(t.Speaker) + " " + t.Text + " "
}

// TurnIDs are the ids of TurnText(t): the format's tags through Encode, the
// person's text through EncodeText. With a tokenizer whose special tokens
// do not strip spaces (GPT-2's, ruDialoGPT's), they equal
// Encode(TurnText(t)) whenever the text holds no special token.
func (f Format) TurnIDs(enc Encoder, t Turn) []int {
	if f == FormatDialoGPT {
		return append(enc.EncodeText(t.Text), enc.Encode(EOS)...)
	}
	return append(enc.Encode(tag(t.Speaker)), enc.EncodeText(" "+t.Text+" ")...)
}

// TargetIDs are the ids of TargetText(reply), the reply as plain text.
func (f Format) TargetIDs(enc Encoder, reply string) []int {
	if f == FormatDialoGPT {
		return append(enc.EncodeText(reply), enc.Encode(EOS)...)
	}
	return append(enc.EncodeText(" "+reply+" "), enc.Encode(TagFirst)...)
}

// Cue is what the prompt ends with: the start of the bot's turn.
func (f Format) Cue() string {
	if f == FormatDialoGPT {
		return ""
	}
	return TagSecond
}

// TargetText is what the model is trained to generate after Cue for a reply
// by the bot: the reply and the tag (or eos) that stops it (in the ruDialoGPT
// form the stop tag is the first speaker's, who talks next).
func (f Format) TargetText(reply string) string {
	if f == FormatDialoGPT {
		return reply + EOS
	}
	return " " + reply + " " + TagFirst
}

// PromptText is the whole prompt as a string, for logs, previews and golden tests.
func (f Format) PromptText(turns []Turn) string {
	var b strings.Builder
	for _, t := range turns {
		b.WriteString(f.TurnText(t))
	}
	b.WriteString(f.Cue())
	return b.String()
}

// PromptLimits bound a prompt: at most MaxTurns turns (0: no limit) and at
// most MaxTokens ids (the model's context minus the new tokens to generate).
type PromptLimits struct {
	MaxTurns  int
	MaxTokens int
}

// BuildPrompt encodes the last turns of a dialogue into prompt ids, ending
// with the bot's cue. Turns are dropped from the oldest until the prompt fits;
// the newest turn and the cue are never cut (ErrPromptTooLong instead).
func BuildPrompt(enc Encoder, f Format, turns []Turn, lim PromptLimits) ([]int, error) {
	turns = nonEmpty(turns)
	if lim.MaxTurns > 0 && len(turns) > lim.MaxTurns {
		turns = turns[len(turns)-lim.MaxTurns:]
	}
	cue := enc.Encode(f.Cue())
	pieces := make([][]int, len(turns))
	total := len(cue)
	for i, t := range turns {
		pieces[i] = f.TurnIDs(enc, t)
		total += len(pieces[i])
	}
	first := 0
	for lim.MaxTokens > 0 && total > lim.MaxTokens && first < len(pieces)-1 {
		total -= len(pieces[first])
		first++
	}
	if lim.MaxTokens > 0 && total > lim.MaxTokens {
		return nil, fmt.Errorf("%w: %d tokens, limit %d", ErrPromptTooLong, total, lim.MaxTokens)
	}
	ids := make([]int, 0, total)
	for _, p := range pieces[first:] {
		ids = append(ids, p...)
	}
	return append(ids, cue...), nil
}

func nonEmpty(turns []Turn) []Turn {
	out := make([]Turn, 0, len(turns))
	for _, t := range turns {
		if t.Text = strings.TrimSpace(t.Text); t.Text != "" {
			out = append(out, t)
		}
	}
	return out
}
