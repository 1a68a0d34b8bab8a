// Package storetest checks that a bot.Storage behaves as the bot needs,
// so that every store (SQLite, PostgreSQL) passes the same tests.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dialogbot/dialogbot/bot"
	"github.com/dialogbot/dialogbot/model/dialog"
)

// Open opens an empty store keeping keep turns per chat; the test closes it.
type Open func(t *testing.T, keep int) bot.Storage

// Run runs every check on stores made by open.
func Run(t *testing.T, open Open) {
	t.Run("history", func(t *testing.T) { history(t, open) })
	t.Run("append once per update", func(t *testing.T) { appendOnce(t, open) })
	t.Run("chance", func(t *testing.T) { chance(t, open) })
	t.Run("inbox", func(t *testing.T) { inbox(t, open) })
}

func u(text string) dialog.Turn  { return dialog.Turn{Speaker: dialog.User, Text: text} }
func me(text string) dialog.Turn { return dialog.Turn{Speaker: dialog.Bot, Text: text} }

func history(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t, 4)
	// Up to 4 turns; the 5th leaves the newest 2, so the start stays put for a while.
	steps := []struct {
		turn dialog.Turn
		want []dialog.Turn
	}{
		{u("a"), []dialog.Turn{u("a")}},
		{me("b"), []dialog.Turn{u("a"), me("b")}},
		{u("c"), []dialog.Turn{u("a"), me("b"), u("c")}},
		{me("d"), []dialog.Turn{u("a"), me("b"), u("c"), me("d")}},
		{u("e"), []dialog.Turn{me("d"), u("e")}},
	}
	for i, st := range steps {
		if err := s.Append(ctx, 1, 0, st.turn); err != nil {
			t.Fatal(err)
		}
		if got, err := s.History(ctx, 1, 0); err != nil || !slices.Equal(got, st.want) {
			t.Errorf("after turn %d: history %v, %v; want %v", i, got, err, st.want)
		}
	}
	if err := s.Append(ctx, 2, 0, u("other chat")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.History(ctx, 3, 0); len(got) != 0 {
		t.Errorf("unknown chat: %v", got)
	}
	if err := s.Reset(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.History(ctx, 1, 0); len(got) != 0 {
		t.Errorf("history after Reset: %v", got)
	}
	if got, _ := s.History(ctx, 2, 0); !slices.Equal(got, []dialog.Turn{u("other chat")}) {
		t.Errorf("Reset of chat 1 touched chat 2: %v", got)
	}
}

func appendOnce(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t, 10)
	for range 2 { // the second run of update 5, after a crash
		if err := s.Append(ctx, 1, 5, u("hi")); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, 1, 5, me("hello")); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.History(ctx, 1, 0); !slices.Equal(got, []dialog.Turn{u("hi"), me("hello")}) {
		t.Errorf("history %v, want each turn once", got)
	}
	if got, _ := s.History(ctx, 1, 5); len(got) != 0 {
		t.Errorf("history without update 5: %v, want none", got)
	}
}

func chance(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t, 3)
	if _, ok, err := s.Chance(ctx, 5); ok || err != nil {
		t.Errorf("Chance of a new chat: ok=%v err=%v, want unset", ok, err)
	}
	for _, p := range []int{30, 0} {
		if err := s.SetChance(ctx, 5, p); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.Chance(ctx, 5); got != p || !ok || err != nil {
			t.Errorf("Chance = %d, %v, %v; want %d", got, ok, err, p)
		}
	}
}

func incoming(ids ...int) []bot.Incoming {
	var out []bot.Incoming
	for _, id := range ids {
		out = append(out, bot.Incoming{UpdateID: id, ChatKey: int64(id % 2), Body: []byte(fmt.Sprintf(`{"update_id":%d}`, id))})
	}
	return out
}

func ids(in []bot.Incoming) []int {
	var out []int
	for _, x := range in {
		out = append(out, x.UpdateID)
	}
	return out
}

func inbox(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t, 10)
	fresh, err := s.Accept(ctx, incoming(3, 1, 2))
	if err != nil || !slices.Equal(ids(fresh), []int{3, 1, 2}) {
		t.Fatalf("Accept = %v, %v", ids(fresh), err)
	}
	if fresh, _ := s.Accept(ctx, incoming(2, 4)); !slices.Equal(ids(fresh), []int{4}) {
		t.Errorf("Accept of a seen and a new id = %v, want [4]", ids(fresh))
	}
	if err := s.SetAnswer(ctx, 2, "answer"); err != nil {
		t.Fatal(err)
	}
	if c, ok := s.(bot.Claims); ok { // a shared store sends only for chats it holds
		if _, err := c.Claim(ctx, time.Minute, 100); err != nil {
			t.Fatal(err)
		}
	}
	o := bot.Outgoing{UpdateID: 2, Seq: 1, ChatID: 9, ReplyTo: 4, Text: "answer", State: bot.Sending}
	if err := s.Record(ctx, o); err != nil {
		t.Fatal(err)
	}
	o.State, o.MessageID = bot.Sent, 77
	if err := s.Record(ctx, o); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := s.Outgoing(ctx, 2, 1); !ok || err != nil || got != o {
		t.Errorf("Outgoing = %+v, %v, %v; want %+v", got, ok, err, o)
	}
	if _, ok, err := s.Outgoing(ctx, 2, 2); ok || err != nil {
		t.Errorf("Outgoing of a message never recorded: %v, %v", ok, err)
	}
	if err := s.Finish(ctx, 1, "answered"); err != nil {
		t.Fatal(err)
	}
	left, err := s.Unfinished(ctx)
	if err != nil || !slices.Equal(ids(left), []int{2, 3, 4}) || left[0].Answer != "answer" ||
		string(left[0].Body) != `{"update_id":2}` || left[0].ChatKey != 0 || left[1].ChatKey != 1 {
		t.Errorf("Unfinished = %+v, %v; want 2 (with its answer), 3, 4", left, err)
	}
	if err := s.Finish(ctx, 2, "answered"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Outgoing(ctx, 2, 1); ok {
		t.Error("a finished update's outbox is kept")
	}
	if fresh, _ := s.Accept(ctx, incoming(1, 2)); len(fresh) != 0 {
		t.Errorf("finished updates accepted again: %v", ids(fresh))
	}
	if n, err := s.Prune(ctx, time.Now().Add(time.Hour)); n != 2 || err != nil {
		t.Errorf("Prune = %d, %v; want the 2 finished", n, err)
	}
	if left, _ := s.Unfinished(ctx); !slices.Equal(ids(left), []int{3, 4}) {
		t.Errorf("Prune touched unfinished updates: %v", ids(left))
	}
}
