package bot

import (
	"context"
	"errors"
	"runtime/debug"
	"strings"

	"github.com/dialogbot/dialogbot/model/dialog"

	"github.com/mymmrac/telego"
)

// handleUpdate is called by a chat's worker, one update at a time per chat.
// Only new messages are answered; edits, reactions and the rest are ignored.
func (b *Bot) handleUpdate(ctx context.Context, u telego.Update) {
	msg := u.Message
	if msg == nil {
		return
	}
	defer b.recoverPanic(ctx, msg)
	switch {
	case !b.allowed(msg):
		b.log.Debug("message from a chat or user not allowed", "chat_id", msg.Chat.ID)
	case fromOtherBot(msg):
		// answering other bots could loop forever
	case b.isCommand(msg):
		b.command(ctx, msg)
	case msg.Text == "":
		b.nonText(ctx, msg)
	default:
		b.converse(ctx, msg)
	}
}

// fromOtherBot tells bots apart from people. Anonymous group admins and
// channels writing in a group also come "from" a bot account, but with a
// sender chat: those are people.
func fromOtherBot(msg *telego.Message) bool {
	return msg.From != nil && msg.From.IsBot && msg.SenderChat == nil
}

// recoverPanic keeps one bad update (or a panicking Replier) from taking the
// bot down: the user gets the apology, the log gets the cause.
func (b *Bot) recoverPanic(ctx context.Context, msg *telego.Message) {
	if r := recover(); r != nil {
		b.log.Error("panic while handling a message", "chat_id", msg.Chat.ID, "panic", r, "stack", string(debug.Stack()))
		b.reply(ctx, msg, b.opts.Texts.Apology)
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
func (b *Bot) nonText(ctx context.Context, msg *telego.Message) {
	_, mentioned := stripMention(msg.Caption, b.mention)
	if b.opts.Texts.NonTextReply == "" || (isGroup(msg.Chat) && !b.repliesToMe(msg) && !mentioned) {
		return
	}
	b.reply(ctx, msg, b.opts.Texts.NonTextReply)
}

// converse records a text message in the chat's history and, when the bot is
// addressed, answers it with the Replier.
func (b *Bot) converse(ctx context.Context, msg *telego.Message) {
	text, addressed := b.addressed(ctx, msg)
	text = strings.TrimSpace(text)
	chatID := msg.Chat.ID
	history, err := b.store.History(ctx, chatID)
	if err != nil {
		b.log.Error("reading history failed; answering without it", "chat_id", chatID, "err", err)
	}
	turn := dialog.Turn{Speaker: dialog.User, Text: text}
	if err := b.store.Append(ctx, chatID, turn); err != nil {
		b.log.Error("saving a message failed", "chat_id", chatID, "err", err)
	}
	if !addressed {
		return
	}
	turns := append(b.quoted(msg, history), turn)
	answer, err := b.generate(ctx, chatID, turns)
	switch {
	case errors.Is(err, dialog.ErrPromptTooLong):
		b.reply(ctx, msg, b.opts.Texts.TooLong)
	case err != nil:
		b.log.Error("generating a reply failed", "chat_id", chatID, "err", err)
		b.reply(ctx, msg, b.opts.Texts.Apology)
	case answer == "":
		b.log.Warn("empty reply, nothing sent", "chat_id", chatID)
	case b.reply(ctx, msg, answer):
		if err := b.store.Append(ctx, chatID, dialog.Turn{Speaker: dialog.Bot, Text: answer}); err != nil {
			b.log.Error("saving a reply failed", "chat_id", chatID, "err", err)
		}
	}
}

// generate asks the Replier, showing "typing" meanwhile.
func (b *Bot) generate(ctx context.Context, chatID int64, turns []dialog.Turn) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.ReplyTimeout)
	defer cancel()
	stop := b.keepTyping(ctx, chatID)
	defer stop()
	answer, err := b.replier.Reply(ctx, chatID, turns)
	return strings.TrimSpace(answer), err
}

// reply sends text in msg's chat (as a reply to msg in groups) and says
// whether it went out; a failure is logged, never fatal.
func (b *Bot) reply(ctx context.Context, msg *telego.Message, text string) bool {
	replyTo := 0
	if isGroup(msg.Chat) {
		replyTo = msg.MessageID
	}
	if err := b.send.sendText(ctx, msg.Chat, replyTo, text); err != nil {
		b.log.Error("sending a reply failed", "chat_id", msg.Chat.ID, "err", err)
		return false
	}
	return true
}
