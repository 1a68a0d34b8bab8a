package bot

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dialogbot/dialogbot/model/dialog"
)

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
