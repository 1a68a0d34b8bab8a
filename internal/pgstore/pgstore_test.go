package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

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

// Two replicas on one database: a chat is held by one at a time, only the
// holder may send for it, and a claim that is not renewed is taken over.
func TestClaims(t *testing.T) {
	ctx := context.Background()
	url := newDatabase(t, pgtest.Start(t))
	open := func() *Store {
		s, err := Open(ctx, url, 10)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	in := []bot.Incoming{
		{UpdateID: 1, ChatKey: 10, Body: []byte(`{"update_id":1}`)},
		{UpdateID: 2, ChatKey: 20, Body: []byte(`{"update_id":2}`)},
		{UpdateID: 3, ChatKey: 10, Body: []byte(`{"update_id":3}`)},
	}
	if _, err := b.Accept(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := a.Claim(ctx, time.Hour, 1) // one more chat: the oldest, 10
	if err != nil || !slices.Equal(updateIDs(got), []int{1, 3}) {
		t.Fatalf("a claims %v, %v; want chat 10's updates 1 and 3", updateIDs(got), err)
	}
	if got, _ := b.Claim(ctx, time.Hour, 10); !slices.Equal(updateIDs(got), []int{2}) {
		t.Errorf("b claims %v, want only chat 20's update 2", updateIDs(got))
	}
	send := bot.Outgoing{UpdateID: 1, Seq: 1, ChatID: 10, Text: "x", State: bot.Sending}
	if err := b.Record(ctx, send); !errors.Is(err, bot.ErrNotOwner) {
		t.Errorf("b records a send for a's chat: %v, want ErrNotOwner", err)
	}
	if err := a.Record(ctx, send); err != nil {
		t.Errorf("a records its send: %v", err)
	}
	// a stops renewing (it died): once its claim expires, b takes chat 10.
	if err := a.Renew(ctx, -time.Second); err != nil { // as if its last renewal was a while ago
		t.Fatal(err)
	}
	if got, _ := b.Claim(ctx, time.Hour, 10); !slices.Equal(updateIDs(got), []int{1, 2, 3}) {
		t.Errorf("b after a's claim expired: %v, want 1, 2, 3", updateIDs(got))
	}
	if err := a.Record(ctx, bot.Outgoing{UpdateID: 3, Seq: 1, ChatID: 10, Text: "y", State: bot.Sending}); !errors.Is(err, bot.ErrNotOwner) {
		t.Errorf("a sends after losing the chat: %v, want ErrNotOwner", err)
	}
	// A chat is released only once nothing of it is unfinished.
	if err := b.Release(ctx, 20); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Claim(ctx, time.Hour, 10); len(got) != 0 {
		t.Errorf("a claims %v while b holds both chats", updateIDs(got))
	}
	if err := b.Finish(ctx, 2, "answered"); err != nil {
		t.Fatal(err)
	}
	if pending, err := a.Pending(ctx, 2); pending || err != nil {
		t.Errorf("Pending(2) = %v, %v after Finish", pending, err)
	}
	if err := b.Release(ctx, 20); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := a.pool.QueryRow(ctx, `SELECT COUNT(*) FROM claims WHERE chat_key = 20`).Scan(&n); err != nil || n != 0 {
		t.Errorf("chat 20's claim after its release: %d rows, %v", n, err)
	}
	// b stops: a takes chat 10 at once, without waiting for the claim to expire.
	if err := b.ReleaseAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Claim(ctx, time.Hour, 10); !slices.Equal(updateIDs(got), []int{1, 3}) {
		t.Errorf("a after b released all: %v, want chat 10's 1 and 3", updateIDs(got))
	}
}

// A replica that stalled past its claims' TTL (a busy CPU) while no other
// replica took its chats keeps serving them: it renews them, or claims them
// again, and may send for them. Before, its expired chats were claimed by
// nobody and their messages never answered.
func TestStalledReplicaKeepsItsChats(t *testing.T) {
	ctx := context.Background()
	url := newDatabase(t, pgtest.Start(t))
	a, err := Open(ctx, url, 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	in := []bot.Incoming{
		{UpdateID: 1, ChatKey: 10, Body: []byte(`{"update_id":1}`)},
		{UpdateID: 2, ChatKey: 20, Body: []byte(`{"update_id":2}`)},
	}
	if _, err := a.Accept(ctx, in); err != nil {
		t.Fatal(err)
	}
	stall := func() {
		t.Helper()
		if err := a.Renew(ctx, -time.Second); err != nil { // its last renewal was too long ago
			t.Fatal(err)
		}
	}
	if got, err := a.Claim(ctx, time.Hour, 10); err != nil || len(got) != 2 {
		t.Fatalf("a claims %v, %v; want updates 1 and 2", updateIDs(got), err)
	}
	stall()
	if err := a.Renew(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Claim(ctx, time.Hour, 0); !slices.Equal(updateIDs(got), []int{1, 2}) {
		t.Errorf("after a renewal past the TTL a holds %v, want 1 and 2", updateIDs(got))
	}
	if err := a.Record(ctx, bot.Outgoing{UpdateID: 1, Seq: 1, ChatID: 10, Text: "x", State: bot.Sending}); err != nil {
		t.Errorf("a sends for its renewed chat: %v", err)
	}
	stall()
	if got, _ := a.Claim(ctx, time.Hour, 10); !slices.Equal(updateIDs(got), []int{1, 2}) {
		t.Errorf("a claims %v after its own claims expired, want 1 and 2", updateIDs(got))
	}
}

func updateIDs(in []bot.Incoming) []int {
	var out []int
	for _, x := range in {
		out = append(out, x.UpdateID)
	}
	return out
}
