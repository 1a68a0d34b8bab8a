package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/mymmrac/telego"

	"github.com/dialogbot/dialogbot/bot"
	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/internal/loader"
	"github.com/dialogbot/dialogbot/internal/ops"
	"github.com/dialogbot/dialogbot/internal/pgstore"
	"github.com/dialogbot/dialogbot/model/engine"
)

func init() {
	register("serve", "run the Telegram bot until SIGINT or SIGTERM", runServe)
}

func runServe(ctx context.Context, args []string, s stdio) error {
	fs := newFlagSet("serve", s)
	path := fs.String("config", "config.toml", "config `file` (TOML); TELEGRAM_BOT_TOKEN overrides telegram.token")
	verbose := fs.Bool("v", false, "log debug messages too")
	modelDir := fs.String("model", "", "exported model `DIR` (overrides model.path)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if *modelDir != "" {
		cfg.Model.Path = *modelDir
	}
	if err := cfg.ValidateToken(); err != nil {
		return err
	}
	log := newLogger(s, *verbose)
	var parts serveParts
	health := &ops.Health{}
	metrics, stopOps, err := startOps(cfg.Ops, health, &parts, log)
	if err != nil {
		return err
	}
	defer stopOps()
	model, closeModel, err := loader.NewReplier(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("load model: %w", err)
	}
	defer func() {
		if err := closeModel(); err != nil {
			log.Error("closing the model failed", "err", err)
		}
	}()
	parts.model.Store(model)
	health.ModelLoaded()
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	parts.store.Store(&store)
	opts := botOptions(cfg)
	opts.Store = store
	opts.Started = func(telego.User) { health.APIAnswered() }
	var replier bot.Replier = model
	if metrics != nil {
		replier = metrics.Timed(model)
	}
	b, err := bot.New(opts, replier, log)
	if err != nil {
		return err
	}
	parts.bot.Store(b)
	return b.Run(ctx) // ctx is cancelled on SIGINT/SIGTERM by main
}

// openStore opens PostgreSQL when storage.url is set, else the SQLite file.
func openStore(ctx context.Context, cfg config.Config) (bot.Storage, error) {
	if cfg.Storage.URL != "" {
		return pgstore.Open(ctx, cfg.Storage.URL, cfg.Bot.HistoryTurns)
	}
	return bot.OpenStore(ctx, cfg.Storage.Path, cfg.Bot.HistoryTurns)
}

// serveParts are what /metrics reads, set as serve starts them (the
// endpoints answer from before the model is loaded).
type serveParts struct {
	model atomic.Pointer[loader.ModelReplier]
	bot   atomic.Pointer[bot.Bot]
	store atomic.Pointer[bot.Storage]
}

func (p *serveParts) sources() ops.Sources {
	return ops.Sources{
		Bot: func() bot.Stats {
			if b := p.bot.Load(); b != nil {
				return b.Stats()
			}
			return bot.Stats{}
		},
		Engine: func() engine.EngineStats {
			if m := p.model.Load(); m != nil {
				return m.EngineStats()
			}
			return engine.EngineStats{}
		},
		Inbox: func(ctx context.Context) (bot.InboxDepth, error) {
			if s := p.store.Load(); s != nil {
				return (*s).Depth(ctx)
			}
			return bot.InboxDepth{}, ops.ErrNotYet
		},
	}
}

// startOps serves /healthz and /metrics unless ops.listen is "". It runs
// before the model loads, so that /healthz says 503 meanwhile; the returned
// func stops it.
func startOps(cfg config.OpsConfig, health *ops.Health, parts *serveParts, log *slog.Logger) (*ops.Metrics, func(), error) {
	if cfg.Listen == "" {
		return nil, func() {}, nil
	}
	metrics := ops.NewMetrics(health, parts.sources(), log)
	srv, err := ops.Listen(cfg.Listen, ops.Handler(health, metrics.Gatherer(), log))
	if err != nil {
		return nil, nil, err
	}
	log.Info("operations endpoints listening", "addr", srv.Addr().String(), "paths", "/healthz /metrics")
	return metrics, func() { closeOps(srv, log) }, nil
}

// closeOps stops the endpoints last, so a scrape sees the final counters
// until the bot has stopped.
func closeOps(srv *ops.Server, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		log.Warn("stopping the operations endpoints", "err", err)
	}
}

func newLogger(s stdio, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: level}))
}

// botOptions maps the config onto the bot's options.
func botOptions(cfg config.Config) bot.Options {
	t, b := cfg.Telegram, cfg.Bot
	var o bot.Options
	o.Token, o.APIURL, o.Mode = t.Token, t.APIURL, t.Mode
	o.WebhookListen, o.WebhookPath, o.WebhookURL, o.WebhookSecret = t.WebhookListen, t.WebhookPath, t.WebhookURL, t.WebhookSecret
	o.WebhookMaxConnections = t.WebhookMaxConnections
	o.AdminIDs, o.AllowedUserIDs, o.AllowedChatIDs = t.AdminIDs, t.AllowedUserIDs, t.AllowedChatIDs
	o.Texts = bot.Texts{
		Greeting: t.Greeting, Help: t.Help, Apology: t.Apology, TooLong: t.TooLong,
		NonTextReply: t.NonTextReply, ResetReply: t.ResetReply,
	}
	o.StorePath = cfg.Storage.Path
	o.HistoryTurns, o.GroupChance = b.HistoryTurns, b.GroupChance
	o.ReplyTimeout = cfg.Generation.Timeout
	o.Limits = bot.Limits{ChatPerSecond: b.ChatPerSecond, GroupPerMinute: b.GroupPerMinute, GlobalPerSecond: b.GlobalPerSecond}
	o.MaxConcurrent, o.QueueSize, o.ShutdownGrace = b.MaxConcurrent, b.QueueSize, b.ShutdownGrace
	o.SendDeadline, o.ClaimTTL = b.SendDeadline, cfg.Storage.ClaimTTL
	return o
}
