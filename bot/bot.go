// Package bot is the Telegram side of dialogbot: it takes updates (long
// polling or a webhook) into a durable inbox, keeps each chat's messages in
// order, stores the dialogue history (SQLite by default, any Storage), asks a
// Replier for the answers and sends them within Telegram's limits, each
// once, retrying what Telegram surely did not get.
package bot

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/mymmrac/telego"
	ta "github.com/mymmrac/telego/telegoapi"
)

// Bot is a running Telegram bot. Make one with New, then call Run once.
type Bot struct {
	opts    Options
	replier Replier
	log     *slog.Logger
	api     *telego.Bot
	client  *http.Client
	send    *sender
	stats   counters

	allowUsers, allowChats map[int64]bool

	// set by Run
	store   Storage
	claims  Claims // set when the store is shared by replicas
	nudge   chan struct{}
	me      telego.User
	mention *regexp.Regexp

	mu          sync.Mutex
	rnd         *rand.Rand
	webhookAddr net.Addr
	guard       *connGuard
}

// New checks the options and prepares a bot; it makes no network call.
func New(opts Options, r Replier, log *slog.Logger) (*Bot, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("bot options: %w", err)
	}
	client := opts.HTTPClient
	if client == nil {
		// A bound on every request, above the long-poll wait, so a connection
		// that died silently frees its chat's worker in a minute or so instead
		// of whenever TCP keepalive notices.
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(),
			Timeout: opts.PollTimeout + 30*time.Second}
	}
	api, err := telego.NewBot(opts.Token,
		telego.WithAPIServer(opts.APIURL),
		telego.WithAPICaller(redactingCaller{next: ta.HTTPCaller{Client: client}, token: opts.Token}),
		telego.WithLogger(telegoLogger{log: log, token: opts.Token}))
	if err != nil {
		return nil, fmt.Errorf("telegram client: %w", err)
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5eed))
	}
	b := &Bot{
		opts: opts, replier: r, log: log, api: api, client: client, rnd: rnd,
		allowUsers: idSet(opts.AllowedUserIDs), allowChats: idSet(opts.AllowedChatIDs),
	}
	lim := newLimiter(opts.Limits, time.Now, sleepCtx)
	b.send = &sender{api: &apiClient{client: client, url: opts.APIURL, token: opts.Token},
		lim: lim, log: log, stats: &b.stats, sleep: sleepCtx, backoff: opts.RetryBackoff}
	return b, nil
}

// Run serves until ctx is cancelled: it takes up the updates the inbox holds
// unfinished, then new ones; on cancellation it stops taking updates, gives
// the replies in flight ShutdownGrace to finish, cancels the rest (they stay
// in the inbox for the next start) and returns once every goroutine it
// started has ended.
func (b *Bot) Run(ctx context.Context) error {
	store := b.opts.Store
	if store == nil {
		s, err := OpenStore(ctx, b.opts.StorePath, b.opts.HistoryTurns)
		if err != nil {
			return err
		}
		defer s.Close()
		store = s
	}
	defer b.client.CloseIdleConnections()
	b.store = store
	b.prune(ctx)
	var me *telego.User
	err := b.startCall(ctx, "get bot identity", func() (err error) {
		me, err = b.api.GetMe(ctx)
		return err
	})
	if err != nil {
		b.log.Info("bot stopped during start-up")
		return nil
	}
	b.me, b.mention = *me, mentionPattern(me.Username)
	b.log.Info("bot started", "username", me.Username, "id", me.ID, "mode", b.opts.Mode)

	// Replies run on a context of their own, so that stopping the updates
	// does not cut them short; close cancels it once the grace is over.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	d := newDispatcher(b.handleJob, b.log, b.opts)
	loopDone := make(chan struct{})
	if claims, ok := store.(Claims); ok {
		// Shared by replicas: updates reach the dispatcher through claims,
		// whichever replica accepted them.
		b.claims, b.nudge = claims, make(chan struct{}, 1)
		d.onIdle = b.release(work)
		go func() { defer close(loopDone); b.claimLoop(ctx, work, d, b.nudge) }()
	} else {
		close(loopDone)
		if err := b.resume(ctx, work, d); err != nil {
			return err
		}
	}
	if b.opts.Mode == ModeWebhook {
		err = b.serveWebhook(ctx, work, d)
	} else {
		err = b.poll(ctx, work, d)
	}
	<-loopDone
	d.close(b.opts.ShutdownGrace, cancelWork)
	if b.claims != nil {
		// Nothing here handles the chats any more (what was cut short stays
		// unfinished): the other replicas may take them now.
		if err := b.claims.ReleaseAll(context.WithoutCancel(ctx)); err != nil {
			b.log.Warn("releasing the chats' claims failed; they expire by themselves", "err", err)
		}
	}
	st := b.Stats()
	b.log.Info("bot stopped", "received", st.Received, "duplicates", st.Duplicates, "resumed", st.Resumed,
		"sent", st.Sent, "retries", st.Retries, "ambiguous", st.Ambiguous, "crashed", st.Crashed,
		"dropped", st.Dropped, "overflowed", st.Overflowed)
	return err
}

// resume hands the updates left unfinished by the last run to their chats,
// oldest first, before any new one.
func (b *Bot) resume(ctx, work context.Context, d *dispatcher) error {
	left, err := b.store.Unfinished(ctx)
	if err != nil {
		return fmt.Errorf("read the inbox: %w", err)
	}
	if len(left) > 0 {
		b.log.Info("taking up updates left unfinished", "count", len(left))
	}
	b.stats.resumed.Add(int64(len(left)))
	jobs := b.jobs(left)
	for _, j := range jobs {
		j.resumed = true
	}
	d.dispatch(work, jobs...)
	return nil
}

// inboxMemory is how long finished updates are remembered to refuse their
// redelivery: Telegram keeps an update at most 24 hours.
const inboxMemory = 48 * time.Hour

func (b *Bot) prune(ctx context.Context) {
	n, err := b.store.Prune(ctx, time.Now().Add(-inboxMemory))
	if err != nil {
		b.log.Error("pruning the inbox failed", "err", err)
	} else if n > 0 {
		b.log.Debug("finished updates forgotten", "count", n)
	}
}

// Username is the bot's @username as getMe gave it (empty before Run).
func (b *Bot) Username() string { return b.me.Username }

// WebhookAddr is the address the webhook server listens on, nil until it does.
func (b *Bot) WebhookAddr() net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.webhookAddr
}

func (b *Bot) roll(percent int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rnd.IntN(100) < percent
}

func idSet(ids []int64) map[int64]bool {
	m := make(map[int64]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}
