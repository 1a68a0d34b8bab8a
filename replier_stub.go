package main

// TEMPORARY: the lead replaces this file with replier.go, which builds the
// real model-backed Replier. Delete this file when replier.go lands.

import (
	"context"
	"errors"
	"log/slog"

	"github.com/dialogbot/dialogbot/bot"
)

func newReplier(ctx context.Context, cfg Config, log *slog.Logger) (bot.Replier, func() error, error) {
	return nil, nil, errors.New("model not wired yet")
}
