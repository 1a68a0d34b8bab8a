package bot

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mymmrac/telego"
	tu "github.com/mymmrac/telego/telegoutil"
)

// Fixed texts of the /chance command.
const (
	chanceUsage     = "Usage: /chance N, where N is a percent from 0 to 100."
	chanceGroupOnly = "/chance works in groups: in a private chat I always answer."
	chanceNotAdmin  = "Only an admin of this chat can change that."
	chanceSet       = "Now I join the conversation unprompted with a %d%% chance."
)

func (b *Bot) isCommand(msg *telego.Message) bool {
	return strings.HasPrefix(msg.Text, "/")
}

// parseCommand splits "/name@bot args" into name and args; name is empty
// when the command is addressed to another bot.
func (b *Bot) parseCommand(text string) (name, args string) {
	head, args, _ := strings.Cut(text, " ")
	name, target, found := strings.Cut(strings.TrimPrefix(head, "/"), "@")
	if found && !strings.EqualFold(target, b.me.Username) {
		return "", ""
	}
	return strings.ToLower(name), strings.TrimSpace(args)
}

func (b *Bot) command(ctx context.Context, j *job, msg *telego.Message) {
	name, args := b.parseCommand(msg.Text)
	switch name {
	case "":
	case "start":
		b.reply(ctx, j, msg, b.opts.Texts.Greeting)
		b.notifyAdmins(ctx, j, msg)
	case "help":
		b.reply(ctx, j, msg, b.opts.Texts.Help)
	case "reset":
		if err := b.store.Reset(ctx, msg.Chat.ID); err != nil {
			b.log.Error("reset failed", "chat_id", msg.Chat.ID, "err", err)
			b.reply(ctx, j, msg, b.opts.Texts.Apology)
			return
		}
		b.reply(ctx, j, msg, b.opts.Texts.ResetReply)
	case "chance":
		b.reply(ctx, j, msg, b.setChance(ctx, msg, args))
	default:
		if !isGroup(msg.Chat) { // in groups the command is likely another bot's
			b.reply(ctx, j, msg, b.opts.Texts.Help)
		}
	}
}

// notifyAdmins tells every admin who started the bot.
func (b *Bot) notifyAdmins(ctx context.Context, j *job, msg *telego.Message) {
	if msg.From == nil {
		return
	}
	text := "New user started the bot: " + describeUser(*msg.From)
	for _, id := range b.opts.AdminIDs {
		chat := telego.Chat{ID: id, Type: telego.ChatTypePrivate}
		if err := b.say(ctx, j, chat, 0, text); err != nil {
			b.log.Error("notifying an admin failed", "admin_id", id, "err", err)
		}
	}
}

// describeUser names a user as "First Last (@username), id N".
func describeUser(u telego.User) string {
	name := strings.TrimSpace(u.FirstName + " " + u.LastName)
	if u.Username != "" {
		name += " (@" + u.Username + ")"
	}
	return fmt.Sprintf("%s, id %d", name, u.ID)
}

// setChance handles /chance N and returns the answer to send.
func (b *Bot) setChance(ctx context.Context, msg *telego.Message, args string) string {
	if !isGroup(msg.Chat) {
		return chanceGroupOnly
	}
	percent, err := strconv.Atoi(strings.TrimSuffix(args, "%"))
	if err != nil || percent < 0 || percent > 100 {
		return chanceUsage
	}
	admin, err := b.isAdmin(ctx, msg)
	if err != nil {
		b.log.Error("checking for a chat admin failed", "chat_id", msg.Chat.ID, "err", err)
		return b.opts.Texts.Apology
	}
	if !admin {
		return chanceNotAdmin
	}
	if err := b.store.SetChance(ctx, msg.Chat.ID, percent); err != nil {
		b.log.Error("saving the chance failed", "chat_id", msg.Chat.ID, "err", err)
		return b.opts.Texts.Apology
	}
	return fmt.Sprintf(chanceSet, percent)
}

// isAdmin asks Telegram whether the sender administers the chat. An
// anonymous admin writes as the chat itself.
func (b *Bot) isAdmin(ctx context.Context, msg *telego.Message) (bool, error) {
	if msg.SenderChat != nil && msg.SenderChat.ID == msg.Chat.ID {
		return true, nil
	}
	if msg.From == nil {
		return false, nil
	}
	m, err := b.api.GetChatMember(ctx, &telego.GetChatMemberParams{ChatID: tu.ID(msg.Chat.ID), UserID: msg.From.ID})
	if err != nil {
		return false, fmt.Errorf("get chat member: %w", err)
	}
	s := m.MemberStatus()
	return s == telego.MemberStatusCreator || s == telego.MemberStatusAdministrator, nil
}
