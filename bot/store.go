package bot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/dialogbot/dialogbot/model/dialog"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// schema is created at every start; IF NOT EXISTS keeps old data.
const schema = `
CREATE TABLE IF NOT EXISTS turns (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	chat_id INTEGER NOT NULL,
	speaker INTEGER NOT NULL,
	text    TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_chat ON turns (chat_id, seq);
CREATE TABLE IF NOT EXISTS chat_settings (
	chat_id INTEGER PRIMARY KEY,
	chance  INTEGER NOT NULL
);`

// Store keeps each chat's recent turns and its settings in SQLite, so a
// restart forgets nothing.
type Store struct {
	db     *sql.DB
	window dialog.Window // turns kept per chat
}

// OpenStore opens (or creates) the database at path and keeps up to keep
// turns of each chat, as dialog.Window says (see Append).
func OpenStore(ctx context.Context, path string, keep int) (*Store, error) {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// One connection: SQLite serialises writers anyway, and it spares us
	// SQLITE_BUSY between our own connections (and makes ":memory:" work).
	db.SetMaxOpenConns(1)
	for _, stmt := range []string{"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=5000", schema} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			db.Close()
			return nil, fmt.Errorf("init store %s: %w", path, err)
		}
	}
	return &Store{db: db, window: dialog.Window{MaxTurns: keep}}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Append adds a turn to a chat's history, then drops the turns that the
// conversation window no longer keeps (dialog.Window: on overflow the older
// turns go at once, so prompts keep their start and their cache is reused).
func (s *Store) Append(ctx context.Context, chatID int64, t dialog.Turn) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO turns (chat_id, speaker, text) VALUES (?, ?, ?)`,
		chatID, int(t.Speaker), t.Text); err != nil {
		return fmt.Errorf("append turn: %w", err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM turns WHERE chat_id = ?`, chatID).Scan(&n); err != nil {
		return fmt.Errorf("count history: %w", err)
	}
	keep := s.window.Keep(n)
	if keep == n {
		return nil
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM turns WHERE chat_id = ? AND seq <= (
		SELECT seq FROM turns WHERE chat_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)`, chatID, chatID, keep)
	if err != nil {
		return fmt.Errorf("trim history: %w", err)
	}
	return nil
}

// History returns a chat's kept turns, oldest first.
func (s *Store) History(ctx context.Context, chatID int64) ([]dialog.Turn, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT speaker, text FROM turns WHERE chat_id = ? ORDER BY seq`, chatID)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	var turns []dialog.Turn
	for rows.Next() {
		var t dialog.Turn
		if err := rows.Scan(&t.Speaker, &t.Text); err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		turns = append(turns, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	return turns, nil
}

// Reset forgets a chat's history (its settings stay).
func (s *Store) Reset(ctx context.Context, chatID int64) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM turns WHERE chat_id = ?`, chatID); err != nil {
		return fmt.Errorf("reset history: %w", err)
	}
	return nil
}

// Chance returns a chat's join probability in percent, or ok=false when the
// chat never set one.
func (s *Store) Chance(ctx context.Context, chatID int64) (percent int, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT chance FROM chat_settings WHERE chat_id = ?`, chatID).Scan(&percent)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read chance: %w", err)
	}
	return percent, true, nil
}

// SetChance stores a chat's join probability in percent.
func (s *Store) SetChance(ctx context.Context, chatID int64, percent int) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO chat_settings (chat_id, chance) VALUES (?, ?)
		ON CONFLICT (chat_id) DO UPDATE SET chance = excluded.chance`, chatID, percent)
	if err != nil {
		return fmt.Errorf("set chance: %w", err)
	}
	return nil
}
