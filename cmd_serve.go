package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/dialogbot/dialogbot/bot"
	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/internal/loader"
	"github.com/dialogbot/dialogbot/internal/pgstore"
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
	replier, closeReplier, err := loader.NewReplier(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("load model: %w", err)
	}
	defer func() {
		if err := closeReplier(); err != nil {
			log.Error("closing the model failed", "err", err)
		}
	}()
	opts := botOptions(cfg)
	if cfg.Storage.URL != "" {
		store, err := pgstore.Open(ctx, cfg.Storage.URL, cfg.Bot.HistoryTurns)
		if err != nil {
			return err
		}
		defer store.Close()
		opts.Store = store
	}
	b, err := bot.New(opts, replier, log)
	if err != nil {
		return err
	}
	return b.Run(ctx) // ctx is cancelled on SIGINT/SIGTERM by main
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
