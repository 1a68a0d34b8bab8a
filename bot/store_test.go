package bot

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

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
		if err := s.Append(ctx, 1, st.turn); err != nil {
			t.Fatal(err)
		}
		if got, err := s.History(ctx, 1); err != nil || !slices.Equal(got, st.want) {
			t.Errorf("after turn %d: history %v, %v; want %v", i, got, err, st.want)
		}
	}
	if err := s.Append(ctx, 2, u("other chat")); err != nil {
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
			got, err := s.History(ctx, tc.chat)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("History(%d) = %v, %v; want %v", tc.chat, got, err, tc.want)
			}
		})
	}
	if err := s.Reset(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.History(ctx, 1); len(got) != 0 {
		t.Errorf("history after Reset: %v", got)
	}
	if got, _ := s.History(ctx, 2); len(got) != 1 {
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
	s.Append(ctx, 1, u("kept"))
	s.SetChance(ctx, 1, 40)
	s.Close()
	s, err = OpenStore(ctx, path, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, _ := s.History(ctx, 1)
	c, _, _ := s.Chance(ctx, 1)
	if !slices.Equal(h, []dialog.Turn{u("kept")}) || c != 40 {
		t.Errorf("after reopening: history %v, chance %d", h, c)
	}
}
