package loader

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/engine"

	"github.com/dialogbot/dialogbot/bot"
)

// modelReplier answers the bot's chats with the model.
type modelReplier struct {
	gen     *engine.Generator
	timeout time.Duration
	log     *slog.Logger
}

// NewReplier loads the configured model; the returned func frees it.
func NewReplier(ctx context.Context, cfg config.Config, log *slog.Logger) (bot.Replier, func() error, error) {
	lm, err := Open(OptionsFrom(cfg, ""), log)
	if err != nil {
		return nil, nil, err
	}
	gen, err := lm.Generator(cfg.Generation, false)
	if err != nil {
		lm.Close()
		return nil, nil, err
	}
	log.Info("model loaded", "path", cfg.Model.Path, "weights", lm.WeightsFile, "device", lm.Module.Device(), "slots", lm.Module.Slots(),
		"context", lm.Module.Capacity(), "format", lm.Meta.Format())
	closeModel := func() error {
		logEngineStats(log, lm.Engine.Stats())
		return lm.Close()
	}
	return ReplierFor(gen, cfg.Generation, log), closeModel, nil
}

// ReplierFor answers the bot's chats with a generator, within the
// configured reply timeout.
func ReplierFor(gen *engine.Generator, g config.GenerationConfig, log *slog.Logger) bot.Replier {
	return &modelReplier{gen: gen, timeout: g.Timeout, log: log}
}

// logEngineStats says at shutdown what the engine did, so an operator sees
// how full the batches were and how much of the prompts the chats' cached
// prompts spared.
func logEngineStats(log *slog.Logger, st engine.EngineStats) {
	log.Info("engine stats", "generated_tokens", st.Tokens, "prompt_tokens", st.PromptTokens,
		"reused_prompt_tokens", st.ReusedTokens, "decode_steps", st.DecodeSteps, "prefill_steps", st.PrefillSteps,
		"rows_per_decode_step", fmt.Sprintf("%.2f", st.RowsPerDecodeStep()))
}

func OptionsFrom(cfg config.Config, dir string) Options {
	if dir == "" {
		dir = cfg.Model.Path
	}
	return Options{Dir: dir, Device: cfg.Model.Device, Dtype: cfg.Model.DType, Threads: cfg.Model.Threads,
		Slots: cfg.Model.Slots, MaxContext: cfg.Model.MaxContext, PromptFormat: cfg.Model.PromptFormat}
}

func (r *modelReplier) Reply(ctx context.Context, chatID int64, turns []dialog.Turn) (string, error) {
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	start := time.Now()
	rep, err := r.gen.Reply(ctx, strconv.FormatInt(chatID, 10), turns)
	if err != nil {
		return "", err
	}
	r.log.Debug("reply", "chat", chatID, "tokens", rep.Tokens, "fallback", rep.Fallback, "ms", time.Since(start).Milliseconds())
	return rep.Text, nil
}
