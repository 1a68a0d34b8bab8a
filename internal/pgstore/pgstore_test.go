package pgstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/dialogbot/dialogbot/bot"
	"github.com/dialogbot/dialogbot/internal/pgtest"
	"github.com/dialogbot/dialogbot/internal/storetest"
)

var dbSeq atomic.Int64

// newDatabase creates a database of its own on the server at url.
func newDatabase(t *testing.T, url string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("t%d", dbSeq.Add(1))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
}

// The PostgreSQL store passes the checks every store must pass.
func TestPostgresStore(t *testing.T) {
	url := pgtest.Start(t)
	storetest.Run(t, func(t *testing.T, keep int) bot.Storage {
		s, err := Open(context.Background(), newDatabase(t, url), keep)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Two stores opening one database at once (two replicas starting) both work.
func TestPostgresOpensTwice(t *testing.T) {
	url := newDatabase(t, pgtest.Start(t))
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			s, err := Open(context.Background(), url, 10)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
