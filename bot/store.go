package bot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/dialogbot/dialogbot/model/dialog"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// schemaVersion is kept in PRAGMA user_version. Version 0 is the first
// layout (speakers as the enum's numbers, no inbox); open migrates it.
const schemaVersion = 2

// schema is created at every start; IF NOT EXISTS keeps old data.
const schema = `
CREATE TABLE IF NOT EXISTS turns (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	chat_id   INTEGER NOT NULL,
	update_id INTEGER,
	speaker   TEXT    NOT NULL CHECK (speaker IN ('user', 'bot')),
	text      TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_chat ON turns (chat_id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS turns_once ON turns (update_id, speaker);
CREATE TABLE IF NOT EXISTS chat_settings (
	chat_id INTEGER PRIMARY KEY,
	chance  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox (
	update_id   INTEGER PRIMARY KEY,
	chat_key    INTEGER NOT NULL,
	body        BLOB    NOT NULL,
	answer      TEXT,
	outcome     TEXT,
	received_at INTEGER NOT NULL,
	finished_at INTEGER
);
CREATE INDEX IF NOT EXISTS inbox_unfinished ON inbox (update_id) WHERE outcome IS NULL;
CREATE TABLE IF NOT EXISTS outbox (
	update_id  INTEGER NOT NULL,
	seq        INTEGER NOT NULL,
	chat_id    INTEGER NOT NULL,
	reply_to   INTEGER NOT NULL,
	text       TEXT    NOT NULL,
	state      TEXT    NOT NULL CHECK (state IN ('planned', 'sending', 'sent')),
	message_id INTEGER NOT NULL,
	PRIMARY KEY (update_id, seq)
);`

// migrateV0 moves the first layout's turns (speaker 0 = user, 1 = bot, the
// numbers int(dialog.Speaker) had when they were written) to the current one.
const migrateV0 = `
ALTER TABLE turns RENAME TO turns_v0;
DROP INDEX IF EXISTS turns_by_chat;
` + schema + `
INSERT INTO turns (seq, chat_id, speaker, text)
	SELECT seq, chat_id, CASE speaker WHEN 0 THEN 'user' ELSE 'bot' END, text FROM turns_v0;
DROP TABLE turns_v0;`

// Store keeps the chats and the inbox in SQLite (see Storage). Its files are
// readable by their owner only: they hold people's conversations.
type Store struct {
	db     *sql.DB
	window dialog.Window // turns kept per chat
}

var _ Storage = (*Store)(nil)

// OpenStore opens (or creates) the database at path and keeps up to keep
// turns of each chat, as dialog.Window says (see Append).
func OpenStore(ctx context.Context, path string, keep int) (*Store, error) {
	if err := privateFile(path); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// One connection: SQLite serialises writers anyway, and it spares us
	// SQLITE_BUSY between our own connections (and makes ":memory:" work).
	db.SetMaxOpenConns(1)
	// WAL with synchronous=NORMAL: a commit is in the WAL file (the OS's
	// cache) when it returns, which survives kill -9 but not a power loss
	// (see docs/reliability.md).
	for _, stmt := range []string{"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=5000"} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			db.Close()
			return nil, fmt.Errorf("init store %s: %w", path, err)
		}
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("init store %s: %w", path, err)
	}
	return &Store{db: db, window: dialog.Window{MaxTurns: keep}}, nil
}

// privateFile creates the database file with mode 0600 before SQLite does
// (SQLite gives its -wal and -shm files the database's mode), and takes
// away what others could do with an existing one.
func privateFile(path string) error {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, st.Mode().Perm()&0o700); err != nil {
			return fmt.Errorf("%s is readable by others and cannot be made private: %w", p, err)
		}
	}
	return nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this program's %d", version, schemaVersion)
	}
	stmts := schema
	if version == 0 && hasOldTurns(ctx, db) {
		stmts = migrateV0
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, stmts); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// hasOldTurns says whether a turns table of the first layout (no update_id) exists.
func hasOldTurns(ctx context.Context, db *sql.DB) bool {
	var n int
	err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('turns')`).Scan(&n)
	if err != nil || n == 0 {
		return false
	}
	err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('turns') WHERE name = 'update_id'`).Scan(&n)
	return err == nil && n == 0
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Append adds a turn to a chat's history, then drops the turns that the
// conversation window no longer keeps (dialog.Window: on overflow the older
// turns go at once, so prompts keep their start and their cache is reused).
func (s *Store) Append(ctx context.Context, chatID int64, updateID int, t dialog.Turn) error {
	speaker, err := SpeakerName(t.Speaker)
	if err != nil {
		return fmt.Errorf("append turn: %w", err)
	}
	var upd any
	if updateID != 0 {
		upd = updateID
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO turns (chat_id, update_id, speaker, text) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, chatID, upd, speaker, t.Text)
	if err != nil {
		return fmt.Errorf("append turn: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // added before this update was handled again
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM turns WHERE chat_id = ?`, chatID).Scan(&n); err != nil {
		return fmt.Errorf("count history: %w", err)
	}
	keep := s.window.Keep(n)
	if keep == n {
		return nil
	}
	_, err = s.db.ExecContext(ctx, `DELETE FROM turns WHERE chat_id = ? AND seq <= (
		SELECT seq FROM turns WHERE chat_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)`, chatID, chatID, keep)
	if err != nil {
		return fmt.Errorf("trim history: %w", err)
	}
	return nil
}

// History returns a chat's kept turns, oldest first, without those of
// update exceptUpdate.
func (s *Store) History(ctx context.Context, chatID int64, exceptUpdate int) ([]dialog.Turn, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT speaker, text FROM turns
		WHERE chat_id = ? AND (update_id IS NULL OR update_id <> ?) ORDER BY seq`, chatID, exceptUpdate)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	var turns []dialog.Turn
	for rows.Next() {
		var t dialog.Turn
		var speaker string
		if err := rows.Scan(&speaker, &t.Text); err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		if t.Speaker, err = ParseSpeaker(speaker); err != nil {
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
