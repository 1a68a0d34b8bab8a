package bot

import (
	"testing"

	"github.com/mymmrac/telego"

	"github.com/dialogbot/dialogbot/internal/telegramtest"
)

// The fake Bot API lives in internal/telegramtest, so that the CLI's end to
// end tests use the same one; these names keep the bot's tests short.

const testToken = telegramtest.Token

var botUser = telegramtest.BotUser

type sent = telegramtest.Sent

// fault is an error the fake server answers one call with.
type fault = telegramtest.Fault

// fakeAPI is the fake server; srv is the same server, for its URL.
type fakeAPI struct {
	*telegramtest.Server
	srv *telegramtest.Server
}

func newFakeAPI(t testing.TB) *fakeAPI {
	s := telegramtest.New(t)
	return &fakeAPI{Server: s, srv: s}
}

func (f *fakeAPI) push(msgs ...*telego.Message) { f.Push(msgs...) }

func (f *fakeAPI) inject(method string, faults ...fault) {
	f.Inject(method, faults...)
}

func (f *fakeAPI) setStatus(chatID, userID int64, status string) { f.SetStatus(chatID, userID, status) }
func (f *fakeAPI) sentTo(chatID int64) []sent                    { return f.SentTo(chatID) }
func (f *fakeAPI) allSent() []sent                               { return f.AllSent() }
func (f *fakeAPI) callCount(method string) int                   { return f.CallCount(method) }
func (f *fakeAPI) actionsIn(chatID int64) int                    { return f.ActionsIn(chatID) }
func (f *fakeAPI) webhookParams() map[string]string              { return f.Webhook() }
