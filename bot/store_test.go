package bot

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dialogbot/dialogbot/model/dialog"
)

func openTestStore(t testing.TB, keep int) *Store {
	t.Helper()
	s, err := OpenStore(context.Background(), filepath.Join(t.TempDir(), "store.db"), keep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreHistory(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, 4)
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
		{me("f"), []dialog.Turn{me("d"), u("e"), me("f")}},
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
	tests := []struct {
		name string
		chat int64
		want []dialog.Turn
	}{
		{"chats apart", 2, []dialog.Turn{u("other chat")}},
		{"unknown chat", 3, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.History(ctx, tc.chat, 0)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("History(%d) = %v, %v; want %v", tc.chat, got, err, tc.want)
			}
		})
	}
	if err := s.Reset(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.History(ctx, 1, 0); len(got) != 0 {
		t.Errorf("history after Reset: %v", got)
	}
	if got, _ := s.History(ctx, 2, 0); len(got) != 1 {
		t.Errorf("Reset of chat 1 touched chat 2: %v", got)
	}
}

func TestStoreChance(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, 3)
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

func TestStoreReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := OpenStore(ctx, path, 10)
	if err != nil {
		t.Fatal(err)
	}
	s.Append(ctx, 1, 0, u("kept"))
	s.SetChance(ctx, 1, 40)
	s.Close()
	s, err = OpenStore(ctx, path, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, _ := s.History(ctx, 1, 0)
	c, _, _ := s.Chance(ctx, 1)
	if !slices.Equal(h, []dialog.Turn{u("kept")}) || c != 40 {
		t.Errorf("after reopening: history %v, chance %d", h, c)
	}
}

func TestStoreAppendOncePerUpdate(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, 10)
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

func TestInboxLifecycle(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, 10)
	in := func(ids ...int) []Incoming {
		var out []Incoming
		for _, id := range ids {
			out = append(out, Incoming{UpdateID: id, Body: []byte(fmt.Sprintf(`{"update_id":%d}`, id))})
		}
		return out
	}
	ids := func(in []Incoming) []int {
		var out []int
		for _, x := range in {
			out = append(out, x.UpdateID)
		}
		return out
	}
	fresh, err := s.Accept(ctx, in(3, 1, 2))
	if err != nil || !slices.Equal(ids(fresh), []int{3, 1, 2}) {
		t.Fatalf("Accept = %v, %v", ids(fresh), err)
	}
	if fresh, _ := s.Accept(ctx, in(2, 4)); !slices.Equal(ids(fresh), []int{4}) {
		t.Errorf("Accept of a seen and a new id = %v, want [4]", ids(fresh))
	}
	if err := s.SetAnswer(ctx, 2, "answer"); err != nil {
		t.Fatal(err)
	}
	o := Outgoing{UpdateID: 2, Seq: 1, ChatID: 9, ReplyTo: 4, Text: "answer", State: Sending}
	if err := s.Record(ctx, o); err != nil {
		t.Fatal(err)
	}
	o.State, o.MessageID = Sent, 77
	if err := s.Record(ctx, o); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := s.Outgoing(ctx, 2, 1); !ok || err != nil || got != o {
		t.Errorf("Outgoing = %+v, %v, %v; want %+v", got, ok, err, o)
	}
	if err := s.Finish(ctx, 1, "answered"); err != nil {
		t.Fatal(err)
	}
	left, err := s.Unfinished(ctx)
	if err != nil || !slices.Equal(ids(left), []int{2, 3, 4}) || left[0].Answer != "answer" ||
		string(left[0].Body) != `{"update_id":2}` {
		t.Errorf("Unfinished = %+v, %v; want 2 (with its answer), 3, 4", left, err)
	}
	if err := s.Finish(ctx, 2, "answered"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Outgoing(ctx, 2, 1); ok {
		t.Error("a finished update's outbox is kept")
	}
	if fresh, _ := s.Accept(ctx, in(1, 2)); len(fresh) != 0 {
		t.Errorf("finished updates accepted again: %v", ids(fresh))
	}
	if n, err := s.Prune(ctx, time.Now().Add(time.Hour)); n != 2 || err != nil {
		t.Errorf("Prune = %d, %v; want the 2 finished", n, err)
	}
	if left, _ := s.Unfinished(ctx); !slices.Equal(ids(left), []int{3, 4}) {
		t.Errorf("Prune touched unfinished updates: %v", ids(left))
	}
}

func TestStoreFilesArePrivate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	oldPath := filepath.Join(dir, "old.db")
	if err := os.WriteFile(oldPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "new.db"), oldPath} {
		s, err := OpenStore(ctx, path, 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, 1, 0, u("secret")); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", filepath.Base(p), st.Mode().Perm())
			}
		}
		s.Close()
	}
}

// A database of the first layout (speakers as 0 and 1) opens with its
// turns' speakers kept.
func TestStoreMigratesNumericSpeakers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v0.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`CREATE TABLE turns (seq INTEGER PRIMARY KEY AUTOINCREMENT, chat_id INTEGER NOT NULL,
		speaker INTEGER NOT NULL, text TEXT NOT NULL);
		CREATE INDEX turns_by_chat ON turns (chat_id, seq);
		CREATE TABLE chat_settings (chat_id INTEGER PRIMARY KEY, chance INTEGER NOT NULL);
		INSERT INTO turns (chat_id, speaker, text) VALUES (1, 0, 'hi'), (1, 1, 'hello');
		INSERT INTO chat_settings VALUES (1, 30);`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(ctx, path, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.History(ctx, 1, 0); err != nil || !slices.Equal(got, []dialog.Turn{u("hi"), me("hello")}) {
		t.Errorf("migrated history %v, %v", got, err)
	}
	var speakers []string
	rows, _ := s.db.Query(`SELECT speaker FROM turns ORDER BY seq`)
	for rows.Next() {
		var sp string
		rows.Scan(&sp)
		speakers = append(speakers, sp)
	}
	rows.Close()
	if !slices.Equal(speakers, []string{"user", "bot"}) {
		t.Errorf("stored speakers %v, want the words", speakers)
	}
	if c, _, _ := s.Chance(ctx, 1); c != 30 {
		t.Errorf("chance after migration %d", c)
	}
}
