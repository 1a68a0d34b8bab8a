package bot

import (
	"context"
	"errors"
	"runtime/debug"
	"strings"

	"github.com/dialogbot/dialogbot/model/dialog"

	"github.com/mymmrac/telego"
)

// handleJob is called by a chat's worker, one update at a time per chat. It
// finishes the update in the inbox unless the bot is stopping, in which case
// the next start handles it again (what was sent already is not repeated).
func (b *Bot) handleJob(ctx context.Context, j *job) {
	if b.claims != nil {
		pending, err := b.claims.Pending(ctx, j.in.UpdateID)
		if err != nil || !pending {
			return // finished already (or unreadable: the next claim round brings it back)
		}
	}
	outcome := b.handleUpdate(ctx, j)
	if ctx.Err() != nil || j.lost {
		return
	}
	if err := b.store.Finish(ctx, j.in.UpdateID, outcome); err != nil {
		b.log.Error("finishing an update failed; it is handled again at the next start (nothing is sent twice)",
			"update_id", j.in.UpdateID, "err", err)
	}
}

// handleUpdate handles one update and says how it ended. Only new messages
// are answered; edits, reactions and the rest are ignored.
func (b *Bot) handleUpdate(ctx context.Context, j *job) (outcome string) {
	msg := j.u.Message
	if msg == nil {
		return "ignored"
	}
	defer b.recoverPanic(ctx, j, msg, &outcome)
	switch {
	case !b.allowed(msg):
		b.log.Debug("message from a chat or user not allowed", "chat_id", msg.Chat.ID)
		return "not allowed"
	case fromOtherBot(msg):
		return "from a bot" // answering other bots could loop forever
	case j.overflow:
		return b.overflow(ctx, j, msg)
	case b.isCommand(msg):
		b.command(ctx, j, msg)
	case msg.Text == "":
		b.nonText(ctx, j, msg)
	default:
		return b.converse(ctx, j, msg)
	}
	return "handled"
}

// overflow keeps a message of a flooding chat as context for the answer to
// a newer one, instead of answering each (the queue would only grow).
func (b *Bot) overflow(ctx context.Context, j *job, msg *telego.Message) string {
	b.stats.overflowed.Add(1)
	b.log.Warn("chat writes faster than it is answered; message kept as context of a newer one",
		"chat_id", msg.Chat.ID, "update_id", j.in.UpdateID)
	if text := strings.TrimSpace(cleanText(msg.Text)); text != "" {
		if err := b.store.Append(ctx, msg.Chat.ID, j.in.UpdateID, dialog.Turn{Speaker: dialog.User, Text: text}); err != nil {
			b.log.Error("saving a message failed", "chat_id", msg.Chat.ID, "err", err)
		}
	}
	return "context only"
}

// fromOtherBot tells bots apart from people. Anonymous group admins and
// channels writing in a group also come "from" a bot account, but with a
// sender chat: those are people.
func fromOtherBot(msg *telego.Message) bool {
	return msg.From != nil && msg.From.IsBot && msg.SenderChat == nil
}

// recoverPanic keeps one bad update (or a panicking Replier) from taking the
// bot down: the user gets the apology, the log gets the cause.
func (b *Bot) recoverPanic(ctx context.Context, j *job, msg *telego.Message, outcome *string) {
	if r := recover(); r != nil {
		b.log.Error("panic while handling a message", "chat_id", msg.Chat.ID, "panic", r, "stack", string(debug.Stack()))
		b.reply(ctx, j, msg, b.opts.Texts.Apology)
		*outcome = "panic"
	}
}

// allowed applies the allow-lists: with both empty everyone is; otherwise a
// message passes when its chat or its sender is listed.
func (b *Bot) allowed(msg *telego.Message) bool {
	if len(b.allowUsers) == 0 && len(b.allowChats) == 0 {
		return true
	}
	return b.allowChats[msg.Chat.ID] || (msg.From != nil && b.allowUsers[msg.From.ID])
}

// nonText answers stickers, photos and the like in private chats and, in
// groups, when replied to or mentioned in a caption, or stays silent when no
// such answer is configured.
func (b *Bot) nonText(ctx context.Context, j *job, msg *telego.Message) {
	_, mentioned := stripMention(msg.Caption, b.mention)
	if b.opts.Texts.NonTextReply == "" || (isGroup(msg.Chat) && !b.repliesToMe(msg) && !mentioned) {
		return
	}
	b.reply(ctx, j, msg, b.opts.Texts.NonTextReply)
}

// converse records a text message in the chat's history and, when the bot is
// addressed, answers it with the Replier. Run again after a crash, it finds
// its message recorded (and leaves it out of the history it reads) and, if
// the answer was generated, sends that same answer.
func (b *Bot) converse(ctx context.Context, j *job, msg *telego.Message) string {
	text, addressed := b.addressed(ctx, msg)
	addressed = addressed || j.in.Answer != "" // decided so before the crash
	text = strings.TrimSpace(cleanText(text))
	chatID := msg.Chat.ID
	history, err := b.store.History(ctx, chatID, j.in.UpdateID)
	if err != nil {
		b.log.Error("reading history failed; answering without it", "chat_id", chatID, "err", err)
	}
	turn := dialog.Turn{Speaker: dialog.User, Text: text}
	if err := b.store.Append(ctx, chatID, j.in.UpdateID, turn); err != nil {
		b.log.Error("saving a message failed", "chat_id", chatID, "err", err)
	}
	if !addressed {
		return "context"
	}
	answer := j.in.Answer
	if answer == "" {
		answer, err = b.generate(ctx, chatID, append(b.quoted(msg, history), turn))
	}
	switch {
	case ctx.Err() != nil:
		return "interrupted"
	case errors.Is(err, dialog.ErrPromptTooLong):
		b.reply(ctx, j, msg, b.opts.Texts.TooLong)
		return "too long"
	case err != nil:
		b.log.Error("generating a reply failed", "chat_id", chatID, "err", err)
		b.reply(ctx, j, msg, b.opts.Texts.Apology)
		return "generation failed"
	case answer == "":
		b.log.Warn("empty reply, nothing sent", "chat_id", chatID)
		return "empty reply"
	}
	if j.in.Answer == "" {
		if err := b.store.SetAnswer(ctx, j.in.UpdateID, answer); err != nil {
			b.log.Error("recording the answer failed; sending it all the same", "chat_id", chatID, "err", err)
		}
	}
	if !b.reply(ctx, j, msg, answer) {
		return "dropped"
	}
	if err := b.store.Append(ctx, chatID, j.in.UpdateID, dialog.Turn{Speaker: dialog.Bot, Text: answer}); err != nil {
		b.log.Error("saving a reply failed", "chat_id", chatID, "err", err)
	}
	return "answered"
}

// generate asks the Replier, showing "typing" meanwhile.
func (b *Bot) generate(ctx context.Context, chatID int64, turns []dialog.Turn) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.ReplyTimeout)
	defer cancel()
	stop := b.keepTyping(ctx, chatID)
	defer stop()
	answer, err := b.replier.Reply(ctx, chatID, turns)
	return strings.TrimSpace(cleanText(answer)), err
}
