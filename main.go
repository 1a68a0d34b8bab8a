// Command dialogbot turns a Telegram chat into a Telegram bot that talks like
// that chat: it builds a dataset from an export, serves a fine-tuned GPT-2
// dialogue model (through libtorch) on Telegram or in the terminal, and
// benchmarks generation.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one sub-command of the CLI. Each lives in its own file and
// registers itself from init, so the commands stay independent of each other.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, io stdio) error
}

// stdio is passed to commands instead of using os.Std* directly, so tests can
// run a command in-process.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, args []string, io stdio) error) {
	commands[name] = command{summary: summary, run: run}
}

// errUsage marks an error as a usage error (exit status 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(code)
}

func runMain(ctx context.Context, args []string, s stdio) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(s.err)
		return 2
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(s.err, "dialogbot: unknown command %q\n\n", args[0])
		usage(s.err)
		return 2
	}
	err := cmd.run(ctx, args[1:], s)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(s.err, "dialogbot %s: %v\n", args[0], err)
		return 2
	}
	fmt.Fprintf(s.err, "dialogbot %s: %v\n", args[0], err)
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: dialogbot COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'dialogbot COMMAND -h' for the flags of a command.")
}

// newFlagSet makes a flag set that reports errors instead of exiting.
func newFlagSet(name string, s stdio) *flag.FlagSet {
	fs := flag.NewFlagSet("dialogbot "+name, flag.ContinueOnError)
	fs.SetOutput(s.err)
	return fs
}

// parseFlags parses args and turns a flag error into a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}
