// Package pgstore keeps the bot's chats and inbox in PostgreSQL
// (bot.Storage), so that several serve replicas can share them.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dialogbot/dialogbot/bot"
	"github.com/dialogbot/dialogbot/model/dialog"
)

// schema is created at every start; IF NOT EXISTS keeps old data. It is the
// SQLite store's, in PostgreSQL's types.
const schema = `
CREATE TABLE IF NOT EXISTS turns (
	seq       BIGSERIAL PRIMARY KEY,
	chat_id   BIGINT NOT NULL,
	update_id BIGINT,
	speaker   TEXT   NOT NULL CHECK (speaker IN ('user', 'bot')),
	text      TEXT   NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_chat ON turns (chat_id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS turns_once ON turns (update_id, speaker);
CREATE TABLE IF NOT EXISTS chat_settings (
	chat_id BIGINT PRIMARY KEY,
	chance  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox (
	update_id   BIGINT PRIMARY KEY,
	chat_key    BIGINT NOT NULL,
	body        BYTEA  NOT NULL,
	answer      TEXT,
	outcome     TEXT,
	received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	finished_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS inbox_unfinished ON inbox (chat_key, update_id) WHERE outcome IS NULL;
CREATE TABLE IF NOT EXISTS outbox (
	update_id  BIGINT  NOT NULL,
	seq        INTEGER NOT NULL,
	chat_id    BIGINT  NOT NULL,
	reply_to   BIGINT  NOT NULL,
	text       TEXT    NOT NULL,
	state      TEXT    NOT NULL CHECK (state IN ('planned', 'sending', 'sent')),
	message_id BIGINT  NOT NULL,
	PRIMARY KEY (update_id, seq)
);
CREATE TABLE IF NOT EXISTS claims (
	chat_key   BIGINT PRIMARY KEY,
	owner      TEXT        NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);`

// Store is a bot.Storage in PostgreSQL, shared by replicas (bot.Claims).
type Store struct {
	pool   *pgxpool.Pool
	window dialog.Window
	owner  string // this replica, in claims
}

var (
	_ bot.Storage = (*Store)(nil)
	_ bot.Claims  = (*Store)(nil)
)

// Open connects to the database at url (postgres://...), creates the
// tables it lacks and keeps up to keep turns of each chat.
func Open(ctx context.Context, url string, keep int) (*Store, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL store: %w", redactURL(err))
	}
	// Two replicas starting at once both create the tables: the lock makes
	// the second wait, then find them.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7265616479)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("init PostgreSQL store: %w", redactURL(err))
	}
	return &Store{pool: pool, window: dialog.Window{MaxTurns: keep}, owner: replicaName()}, nil
}

// replicaName is unique to this process: host, pid and a random part (a
// restarted replica is a new one; its old claims expire).
func replicaName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%08x", host, os.Getpid(), rand.Uint32())
}

// redactURL keeps a password in the URL out of errors; pgx's connect errors
// name host and user only, so this is a guard for the future.
func redactURL(err error) error {
	var pgErr *pgconn.ConnectError
	if errors.As(err, &pgErr) {
		return fmt.Errorf("connect to PostgreSQL: %w", pgErr.Unwrap())
	}
	return err
}

// Close closes the connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Append adds a turn (once per update and speaker) and trims the chat's
// history as dialog.Window says, in one transaction.
func (s *Store) Append(ctx context.Context, chatID int64, updateID int, t dialog.Turn) error {
	speaker, err := bot.SpeakerName(t.Speaker)
	if err != nil {
		return fmt.Errorf("append turn: %w", err)
	}
	var upd *int
	if updateID != 0 {
		upd = &updateID
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO turns (chat_id, update_id, speaker, text) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, chatID, upd, speaker, t.Text)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM turns WHERE chat_id = $1`, chatID).Scan(&n); err != nil {
			return err
		}
		keep := s.window.Keep(n)
		if keep == n {
			return nil
		}
		_, err = tx.Exec(ctx, `DELETE FROM turns WHERE chat_id = $1 AND seq <= (
			SELECT seq FROM turns WHERE chat_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)`, chatID, keep)
		return err
	})
	if err != nil {
		return fmt.Errorf("append turn: %w", err)
	}
	return nil
}

// History returns a chat's turns, oldest first, without those of exceptUpdate.
func (s *Store) History(ctx context.Context, chatID int64, exceptUpdate int) ([]dialog.Turn, error) {
	rows, err := s.pool.Query(ctx, `SELECT speaker, text FROM turns
		WHERE chat_id = $1 AND (update_id IS NULL OR update_id <> $2) ORDER BY seq`, chatID, exceptUpdate)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	var turns []dialog.Turn
	var speaker, text string
	_, err = pgx.ForEachRow(rows, []any{&speaker, &text}, func() error {
		sp, err := bot.ParseSpeaker(speaker)
		turns = append(turns, dialog.Turn{Speaker: sp, Text: text})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	return turns, nil
}

// Reset forgets a chat's history.
func (s *Store) Reset(ctx context.Context, chatID int64) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM turns WHERE chat_id = $1`, chatID); err != nil {
		return fmt.Errorf("reset history: %w", err)
	}
	return nil
}

// Chance returns a chat's join probability, ok=false when never set.
func (s *Store) Chance(ctx context.Context, chatID int64) (int, bool, error) {
	var percent int
	err := s.pool.QueryRow(ctx, `SELECT chance FROM chat_settings WHERE chat_id = $1`, chatID).Scan(&percent)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read chance: %w", err)
	}
	return percent, true, nil
}

// SetChance stores a chat's join probability.
func (s *Store) SetChance(ctx context.Context, chatID int64, percent int) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO chat_settings (chat_id, chance) VALUES ($1, $2)
		ON CONFLICT (chat_id) DO UPDATE SET chance = excluded.chance`, chatID, percent)
	if err != nil {
		return fmt.Errorf("set chance: %w", err)
	}
	return nil
}

// Accept stores the new updates in one transaction and returns them.
func (s *Store) Accept(ctx context.Context, updates []bot.Incoming) ([]bot.Incoming, error) {
	var fresh []bot.Incoming
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		fresh = fresh[:0]
		for _, u := range updates {
			tag, err := tx.Exec(ctx, `INSERT INTO inbox (update_id, chat_key, body) VALUES ($1, $2, $3)
				ON CONFLICT (update_id) DO NOTHING`, u.UpdateID, u.ChatKey, []byte(u.Body))
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 1 {
				fresh = append(fresh, u)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("accept updates: %w", err)
	}
	return fresh, nil
}

// Unfinished returns the updates not finished yet, oldest first.
func (s *Store) Unfinished(ctx context.Context) ([]bot.Incoming, error) {
	return s.unfinished(ctx, `SELECT update_id, chat_key, body, COALESCE(answer, '') FROM inbox
		WHERE outcome IS NULL ORDER BY update_id`)
}

func (s *Store) unfinished(ctx context.Context, query string, args ...any) ([]bot.Incoming, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read inbox: %w", err)
	}
	var out []bot.Incoming
	var in bot.Incoming
	var body []byte
	_, err = pgx.ForEachRow(rows, []any{&in.UpdateID, &in.ChatKey, &body, &in.Answer}, func() error {
		in.Body = append([]byte(nil), body...)
		out = append(out, in)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read inbox: %w", err)
	}
	return out, nil
}

// SetAnswer records an update's generated answer.
func (s *Store) SetAnswer(ctx context.Context, updateID int, answer string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE inbox SET answer = $1 WHERE update_id = $2`, answer, updateID); err != nil {
		return fmt.Errorf("record answer of update %d: %w", updateID, err)
	}
	return nil
}

// Finish marks an update done and deletes its outbox, in one transaction.
func (s *Store) Finish(ctx context.Context, updateID int, outcome string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE inbox SET outcome = $1, finished_at = now(), answer = NULL
			WHERE update_id = $2`, outcome, updateID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM outbox WHERE update_id = $1`, updateID)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish update %d: %w", updateID, err)
	}
	return nil
}

// Outgoing reads the seq-th reply of an update.
func (s *Store) Outgoing(ctx context.Context, updateID, seq int) (bot.Outgoing, bool, error) {
	o := bot.Outgoing{UpdateID: updateID, Seq: seq}
	var state string
	err := s.pool.QueryRow(ctx, `SELECT chat_id, reply_to, text, state, message_id FROM outbox
		WHERE update_id = $1 AND seq = $2`, updateID, seq).Scan(&o.ChatID, &o.ReplyTo, &o.Text, &state, &o.MessageID)
	if errors.Is(err, pgx.ErrNoRows) {
		return bot.Outgoing{}, false, nil
	}
	if err != nil {
		return bot.Outgoing{}, false, fmt.Errorf("read outbox: %w", err)
	}
	o.State = bot.SendState(state)
	return o, true, nil
}

// Record writes a reply's state. A send (state sending) is recorded only
// while this replica holds the update's chat: the fence that keeps a
// replica that stalled past its claim from sending what the chat's new
// holder sends.
func (s *Store) Record(ctx context.Context, o bot.Outgoing) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO outbox (update_id, seq, chat_id, reply_to, text, state, message_id)
		SELECT $1, $2, $3, $4, $5, $6, $7
		WHERE $6 <> 'sending' OR EXISTS (SELECT 1 FROM inbox i JOIN claims c ON c.chat_key = i.chat_key
			WHERE i.update_id = $1 AND c.owner = $8 AND c.expires_at > now())
		ON CONFLICT (update_id, seq) DO UPDATE SET state = excluded.state, message_id = excluded.message_id`,
		o.UpdateID, o.Seq, o.ChatID, o.ReplyTo, o.Text, string(o.State), o.MessageID, s.owner)
	if err != nil {
		return fmt.Errorf("record reply %d/%d as %s: %w", o.UpdateID, o.Seq, o.State, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("record reply %d/%d: %w", o.UpdateID, o.Seq, bot.ErrNotOwner)
	}
	return nil
}

// Claim takes up to limit more chats with unfinished updates whose claim is
// missing or expired (this replica's own expired claims too: it may have
// stalled past the TTL, and a chat nobody claims is never answered), then
// returns the unfinished updates of every chat
// this replica holds, oldest first.
func (s *Store) Claim(ctx context.Context, ttl time.Duration, limit int) ([]bot.Incoming, error) {
	_, err := s.pool.Exec(ctx, `INSERT INTO claims (chat_key, owner, expires_at)
		SELECT i.chat_key, $1, now() + $2::interval FROM inbox i
		WHERE i.outcome IS NULL AND NOT EXISTS (
			SELECT 1 FROM claims c WHERE c.chat_key = i.chat_key AND c.expires_at > now())
		GROUP BY i.chat_key ORDER BY MIN(i.update_id) LIMIT $3
		ON CONFLICT (chat_key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
			WHERE claims.expires_at <= now()`, s.owner, ttl.String(), limit)
	if err != nil {
		return nil, fmt.Errorf("claim chats: %w", err)
	}
	return s.unfinished(ctx, `SELECT i.update_id, i.chat_key, i.body, COALESCE(i.answer, '') FROM inbox i
		JOIN claims c ON c.chat_key = i.chat_key
		WHERE i.outcome IS NULL AND c.owner = $1 AND c.expires_at > now() ORDER BY i.update_id`, s.owner)
}

// Renew extends this replica's claims by ttl from now, expired ones too:
// one another replica took has another owner and is left alone, and one
// nobody took is still this replica's to serve. Renewing only live claims
// orphaned the chats of a replica that stalled past the TTL on a busy CPU:
// no one claimed them again and their messages were never answered.
func (s *Store) Renew(ctx context.Context, ttl time.Duration) error {
	if _, err := s.pool.Exec(ctx, `UPDATE claims SET expires_at = now() + $2::interval
		WHERE owner = $1`, s.owner, ttl.String()); err != nil {
		return fmt.Errorf("renew claims: %w", err)
	}
	return nil
}

// Release gives up this replica's claim on a chat with nothing unfinished.
func (s *Store) Release(ctx context.Context, chatKey int64) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM claims c WHERE c.chat_key = $1 AND c.owner = $2
		AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.chat_key = $1 AND i.outcome IS NULL)`, chatKey, s.owner)
	if err != nil {
		return fmt.Errorf("release chat %d: %w", chatKey, err)
	}
	return nil
}

// ReleaseAll gives up every claim of this replica.
func (s *Store) ReleaseAll(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM claims WHERE owner = $1`, s.owner); err != nil {
		return fmt.Errorf("release claims: %w", err)
	}
	return nil
}

// Pending says whether an update is unfinished.
func (s *Store) Pending(ctx context.Context, updateID int) (bool, error) {
	var pending bool
	err := s.pool.QueryRow(ctx, `SELECT outcome IS NULL FROM inbox WHERE update_id = $1`, updateID).Scan(&pending)
	if err != nil {
		return false, fmt.Errorf("read update %d: %w", updateID, err)
	}
	return pending, nil
}

// Prune forgets finished updates older than before.
func (s *Store) Prune(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM inbox WHERE outcome IS NOT NULL AND finished_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("prune inbox: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Depth counts the inbox's updates by state in one query.
func (s *Store) Depth(ctx context.Context) (bot.InboxDepth, error) {
	var d bot.InboxDepth
	if err := s.pool.QueryRow(ctx, bot.DepthQuery).Scan(&d.Waiting, &d.Answered, &d.Finished); err != nil {
		return bot.InboxDepth{}, fmt.Errorf("count the inbox: %w", err)
	}
	return d, nil
}
