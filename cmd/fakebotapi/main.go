// Command fakebotapi runs the fake Telegram Bot API of internal/telegramtest
// as a process, so that a built binary or a container image can be smoke-tested
// end to end without Telegram (deploy/smoke.sh). It prints its two addresses
// and the token it accepts, then serves until SIGINT or SIGTERM:
//
//	api_url=http://127.0.0.1:PORT      the bot's telegram.api_url
//	control_url=http://127.0.0.1:PORT  the test's side, see newControl
//	token=...                          the bot's telegram.token
//
// Both listen on the loopback interface only, and messages are delivered only
// to a webhook on the loopback interface: a test tool never posts elsewhere.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dialogbot/dialogbot/internal/telegramtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakebotapi:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakebotapi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	controlAddr := fs.String("control", "127.0.0.1:0", "loopback `address` of the control server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopback(*controlAddr); err != nil {
		return err
	}
	tb := newLogTB(stderr)
	defer tb.cleanup()
	api := telegramtest.New(tb) // httptest: listens on 127.0.0.1, a free port
	ln, err := net.Listen("tcp", *controlAddr)
	if err != nil {
		return fmt.Errorf("control listen: %w", err)
	}
	srv := &http.Server{Handler: newControl(api, tb).handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "api_url=%s\ncontrol_url=http://%s\ntoken=%s\n", api.URL, ln.Addr(), telegramtest.Token)
	select {
	case <-ctx.Done():
		_ = srv.Close()
		<-served
		return nil
	case err := <-served:
		return fmt.Errorf("control server: %w", err)
	}
}

// checkLoopback refuses a listen address that is not on the loopback
// interface.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("control address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("control address " + addr + " is not a loopback address")
	}
	return nil
}
