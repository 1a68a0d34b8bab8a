package bot

import (
	"context"
	"regexp"
	"strings"

	"github.com/dialogbot/dialogbot/model/dialog"

	"github.com/mymmrac/telego"
)

// addressed says whether the bot should answer a text message, and returns
// the text as the model should see it (without the bot's @username). Private
// chats are always answered; in groups the bot answers when mentioned or
// replied to, and otherwise joins in with the chat's chance.
func (b *Bot) addressed(ctx context.Context, msg *telego.Message) (string, bool) {
	text := msg.Text
	if !isGroup(msg.Chat) {
		return text, true
	}
	if stripped, ok := stripMention(text, b.mention); ok {
		return stripped, true
	}
	if b.repliesToMe(msg) {
		return text, true
	}
	return text, b.roll(b.chance(ctx, msg.Chat.ID))
}

func (b *Bot) repliesToMe(msg *telego.Message) bool {
	r := msg.ReplyToMessage
	return r != nil && r.From != nil && r.From.ID == b.me.ID
}

// chance is a chat's join probability: its own, or the configured default.
func (b *Bot) chance(ctx context.Context, chatID int64) int {
	percent, ok, err := b.store.Chance(ctx, chatID)
	if err != nil {
		b.log.Error("reading the chat's chance failed", "chat_id", chatID, "err", err)
	}
	if !ok {
		return b.opts.GroupChance
	}
	return percent
}

// mentionPattern matches @username, case-insensitive, as a whole word.
func mentionPattern(username string) *regexp.Regexp {
	if username == "" {
		return nil
	}
	return regexp.MustCompile(`(?i)@` + regexp.QuoteMeta(username) + `\b`)
}

// stripMention removes every mention re matches from text; ok says whether
// there was one. A text that is only the mention stays as it is, so the model
// still sees a turn.
func stripMention(text string, re *regexp.Regexp) (string, bool) {
	if re == nil || !re.MatchString(text) {
		return text, false
	}
	stripped := strings.Join(strings.Fields(re.ReplaceAllString(text, " ")), " ")
	if stripped == "" {
		return text, true
	}
	return stripped, true
}

// quoted returns history with the message msg replies to appended, because
// the user answers that message and the model should see it right before.
// It is left out when it is already the newest turn of the history.
func (b *Bot) quoted(msg *telego.Message, history []dialog.Turn) []dialog.Turn {
	r := msg.ReplyToMessage
	if r == nil {
		return history
	}
	text := strings.TrimSpace(cleanText(r.Text))
	if text == "" {
		text = strings.TrimSpace(cleanText(r.Caption))
	}
	if text == "" {
		return history
	}
	t := dialog.Turn{Speaker: dialog.User, Text: text}
	if r.From != nil && r.From.ID == b.me.ID {
		t.Speaker = dialog.Bot
	}
	if n := len(history); n > 0 && history[n-1] == t {
		return history
	}
	return append(history, t)
}
