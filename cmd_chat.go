package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/internal/loader"
	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/engine"
)

func init() {
	register("chat", "talk to the model in the terminal (one reply per line when stdin is not a terminal)", runChat)
}

func runChat(ctx context.Context, args []string, s stdio) error {
	fs := newFlagSet("chat", s)
	configPath := fs.String("config", "", "TOML config (model and generation sections); default: built-in defaults")
	dir := fs.String("model", "", "exported model directory (default: model.path from the config)")
	device := fs.String("device", "", "auto, cpu, cuda or cuda:N (default: model.device from the config)")
	greedy := fs.Bool("greedy", false, "plain argmax decoding, no penalties, one candidate (comparable with a reference)")
	seed := fs.Int64("seed", 0, "random seed for sampling (0: random)")
	verbose := fs.Bool("v", false, "log model loading details on stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		return err
	}
	if *device != "" {
		if cfg.Model.Device, err = config.ParseDevice(*device); err != nil {
			return fmt.Errorf("%w: --device: %w", errUsage, err)
		}
	}
	if *seed != 0 {
		cfg.Generation.Seed = *seed
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: level}))
	lm, err := loader.Open(loader.OptionsFrom(cfg, *dir), log)
	if err != nil {
		return err
	}
	defer lm.Close()
	gen, err := lm.Generator(cfg.Generation, *greedy)
	if err != nil {
		return err
	}
	c := &chatSession{gen: gen, s: s, interactive: isTerminal(s.in), timeout: cfg.Generation.Timeout}
	return c.run(ctx)
}

// chatSession is one terminal conversation with its history.
type chatSession struct {
	gen         *engine.Generator
	s           stdio
	interactive bool
	timeout     time.Duration
	history     []dialog.Turn
}

func (c *chatSession) run(ctx context.Context) error {
	if c.interactive {
		fmt.Fprintln(c.s.err, "Type a message and press Enter; /reset forgets the conversation, Ctrl-D quits.")
	}
	in := bufio.NewScanner(c.s.in)
	in.Buffer(make([]byte, 64*1024), 1024*1024)
	for c.prompt(); in.Scan(); c.prompt() {
		if err := c.handle(ctx, in.Text()); err != nil {
			return err
		}
	}
	if err := in.Err(); err != nil {
		return fmt.Errorf("read input: %w", err)
	}
	return nil
}

func (c *chatSession) prompt() {
	if c.interactive {
		fmt.Fprint(c.s.err, "> ")
	}
}

func (c *chatSession) handle(ctx context.Context, line string) error {
	text := strings.TrimSpace(line)
	if text == "/reset" {
		c.history = nil
		if c.interactive {
			fmt.Fprintln(c.s.err, "(history cleared)")
		}
		return nil
	}
	if text == "" {
		_, err := fmt.Fprintln(c.s.out)
		return err
	}
	reply, elapsed, err := c.reply(ctx, text)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.s.err, "[%d ms, %d tokens]\n", elapsed.Milliseconds(), reply.Tokens)
	_, err = fmt.Fprintln(c.s.out, oneLine(reply.Text))
	return err
}

// reply asks the model; a message too long for the context is reported,
// not fatal, so the conversation can go on.
func (c *chatSession) reply(ctx context.Context, text string) (engine.Reply, time.Duration, error) {
	turns := append(c.history, dialog.Turn{Speaker: dialog.User, Text: text})
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	start := time.Now()
	r, err := c.gen.Reply(ctx, "terminal", turns) // one conversation: its prompts share their start
	elapsed := time.Since(start)
	if err != nil {
		if errors.Is(err, dialog.ErrPromptTooLong) {
			fmt.Fprintf(c.s.err, "message too long: %v\n", err)
			return engine.Reply{}, elapsed, nil
		}
		return r, elapsed, err
	}
	c.history = append(turns, dialog.Turn{Speaker: dialog.Bot, Text: r.Text})
	return r, elapsed, nil
}

// oneLine keeps one reply on one output line, so scripts can pair inputs
// with replies: a newline inside a reply is printed as the two characters \n.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", `\n`)
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
