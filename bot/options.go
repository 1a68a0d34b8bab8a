package bot

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/mymmrac/telego"
)

// Mode says how updates reach the bot.
const (
	ModePolling = "polling"
	ModeWebhook = "webhook"
)

// Options configure a Bot. The zero value of every field but Token means its
// default (see withDefaults); main fills them from the TOML config.
type Options struct {
	Token  string
	APIURL string // default https://api.telegram.org
	Mode   string // ModePolling (default) or ModeWebhook

	WebhookListen string // address the webhook server listens on, e.g. ":8443"
	WebhookPath   string // path Telegram posts updates to, e.g. "/telegram"
	WebhookURL    string // public URL given to setWebhook
	WebhookSecret string // checked on every webhook request
	// WebhookMaxConnections is setWebhook's max_connections (1-100).
	WebhookMaxConnections int
	// WebhookMaxOpen bounds the webhook server's open connections: past it
	// the longest-idle one is closed.
	WebhookMaxOpen int

	AdminIDs       []int64 // notified on /start
	AllowedUserIDs []int64 // with AllowedChatIDs: both empty = everyone
	AllowedChatIDs []int64

	Texts Texts

	StorePath    string        // SQLite file with histories, settings and the inbox
	Store        Storage       // used instead of StorePath when set (the caller closes it)
	HistoryTurns int           // most turns kept per chat and given to the Replier (see Store.Append)
	GroupChance  int           // percent chance of joining a group unprompted, for chats without /chance
	ReplyTimeout time.Duration // bound on one Replier call

	Limits Limits

	// Started, when set, is called once the Bot API answered getMe, before
	// any update is taken: from then on the bot can serve (/healthz).
	Started func(me telego.User)

	MaxConcurrent  int           // updates handled at once over all chats
	QueueSize      int           // updates waiting per chat; older ones past it become context of the newer
	IdleTimeout    time.Duration // an idle chat worker exits after this
	ShutdownGrace  time.Duration // replies in flight get this long to finish on shutdown
	TypingInterval time.Duration // "typing" is repeated this often while generating
	PollTimeout    time.Duration // long-polling timeout of getUpdates
	RetryBackoff   time.Duration // first wait after a failed call; doubled each time up to 30 s
	// SendDeadline bounds the retries of one message; then it is dropped
	// and the user gets the apology, if that can be sent within ApologyDeadline.
	SendDeadline    time.Duration
	ApologyDeadline time.Duration
	// ClaimTTL is how long a replica's claim on a chat lives without
	// renewal (a store shared by replicas): how soon the chats of a replica
	// that died are taken over. Renewed every second.
	ClaimTTL time.Duration

	// HTTPClient defaults to a client of its own, closed on exit. One given
	// here needs an ExpectContinueTimeout (http.DefaultTransport's is 1 s):
	// without it a reset before Telegram read a message cannot be told from
	// one after, and the message is taken as sent.
	HTTPClient *http.Client
	Rand       *rand.Rand // for the group chance; default seeded from the clock
}

// Texts are what the bot says besides generated replies.
type Texts struct {
	Greeting     string // /start
	Help         string // /help
	Apology      string // the Replier failed
	TooLong      string // the message does not fit the model's context
	NonTextReply string // stickers, photos...; empty = silence
	ResetReply   string // /reset
}

// Limits are Telegram's sending limits, as token buckets.
type Limits struct {
	ChatPerSecond   float64 // per chat, about 1
	GroupPerMinute  float64 // per group chat, 20
	GlobalPerSecond float64 // over all chats, 30
}

// tuning are the defaults of the options that no config key sets: how the
// bot paces its own work. What a user may configure (texts, limits, queue
// sizes, deadlines, the store) has its defaults in internal/config alone,
// and a zero value there is an error of Validate, not a silent default.
func tuning() Options {
	return Options{
		Mode:           ModePolling,
		IdleTimeout:    time.Minute,
		TypingInterval: 4 * time.Second,
		PollTimeout:    25 * time.Second,
		RetryBackoff:   time.Second,
		// the apology after a failed send gets this long of its own
		ApologyDeadline: 10 * time.Second,
		WebhookMaxOpen:  256,
	}
}

// Validate reports the first option that cannot work.
// Zero tuning fields take their defaults (see tuning) and are valid.
func (o Options) Validate() error {
	o = o.withDefaults()
	switch {
	case o.Token == "":
		return errors.New("empty token")
	case o.APIURL == "":
		return errors.New("empty Bot API URL")
	case o.Texts.Greeting == "" || o.Texts.Help == "" || o.Texts.Apology == "" || o.Texts.TooLong == "" || o.Texts.ResetReply == "":
		return errors.New("the greeting, help, apology, too-long and reset texts must not be empty")
	case o.ReplyTimeout <= 0 || o.ShutdownGrace <= 0 || o.SendDeadline <= 0:
		return errors.New("the reply timeout, shutdown grace and send deadline must be positive")
	case o.Mode != ModePolling && o.Mode != ModeWebhook:
		return fmt.Errorf("mode %q: want %q or %q", o.Mode, ModePolling, ModeWebhook)
	case o.Mode == ModeWebhook && (o.WebhookListen == "" || o.WebhookURL == "" || o.WebhookSecret == ""):
		return errors.New("webhook mode needs a listen address, a URL and a secret")
	case o.GroupChance < 0 || o.GroupChance > 100:
		return fmt.Errorf("group chance %d: want 0..100", o.GroupChance)
	case o.HistoryTurns < 1:
		return fmt.Errorf("history turns %d: want at least 1", o.HistoryTurns)
	case o.MaxConcurrent < 1 || o.QueueSize < 1:
		return errors.New("max concurrent and queue size must be at least 1")
	case o.Limits.ChatPerSecond <= 0 || o.Limits.GroupPerMinute <= 0 || o.Limits.GlobalPerSecond <= 0:
		return errors.New("rate limits must be positive")
	case o.StorePath == "" && o.Store == nil:
		return errors.New("empty store path")
	case o.WebhookMaxConnections < 1 || o.WebhookMaxConnections > 100:
		return fmt.Errorf("webhook max connections %d: want 1..100", o.WebhookMaxConnections)
	case o.WebhookMaxOpen < 1:
		return errors.New("webhook max open connections must be at least 1")
	case o.ClaimTTL < 2*time.Second:
		return fmt.Errorf("claim TTL %v: want at least 2s (claims are renewed every second)", o.ClaimTTL)
	}
	return nil
}

// withDefaults fills the zero tuning fields (see tuning).
func (o Options) withDefaults() Options {
	d := tuning()
	setDefault(&o.Mode, d.Mode)
	setDefault(&o.IdleTimeout, d.IdleTimeout)
	setDefault(&o.TypingInterval, d.TypingInterval)
	setDefault(&o.PollTimeout, d.PollTimeout)
	setDefault(&o.RetryBackoff, d.RetryBackoff)
	setDefault(&o.ApologyDeadline, d.ApologyDeadline)
	setDefault(&o.WebhookMaxOpen, d.WebhookMaxOpen)
	return o
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
