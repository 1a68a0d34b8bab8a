package bot

import (
	"context"

	"github.com/dialogbot/dialogbot/model/dialog"
)

// Replier generates the bot's reply to a dialogue (oldest turn first, the
// newest is the user's message). It is owned here, by its consumer, so the bot
// is tested with fakes and knows nothing of the model behind it. A Replier
// returning an error wrapping dialog.ErrPromptTooLong means the user's message
// is too long; the user is told so.
type Replier interface {
	Reply(ctx context.Context, chatID int64, turns []dialog.Turn) (string, error)
}
