package bot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Accept stores the new updates in one transaction and returns them.
func (s *Store) Accept(ctx context.Context, updates []Incoming) ([]Incoming, error) {
	if len(updates) == 0 {
		return nil, nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("accept updates: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().Unix()
	var fresh []Incoming
	for _, u := range updates {
		res, err := tx.ExecContext(ctx, `INSERT INTO inbox (update_id, chat_key, body, received_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (update_id) DO NOTHING`, u.UpdateID, u.ChatKey, []byte(u.Body), now)
		if err != nil {
			return nil, fmt.Errorf("accept update %d: %w", u.UpdateID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			fresh = append(fresh, u)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("accept updates: %w", err)
	}
	return fresh, nil
}

// Unfinished returns the updates not finished yet, oldest first.
func (s *Store) Unfinished(ctx context.Context) ([]Incoming, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT update_id, chat_key, body, COALESCE(answer, '') FROM inbox
		WHERE outcome IS NULL ORDER BY update_id`)
	if err != nil {
		return nil, fmt.Errorf("read inbox: %w", err)
	}
	defer rows.Close()
	var out []Incoming
	for rows.Next() {
		var in Incoming
		var body []byte
		if err := rows.Scan(&in.UpdateID, &in.ChatKey, &body, &in.Answer); err != nil {
			return nil, fmt.Errorf("read inbox: %w", err)
		}
		in.Body = body
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read inbox: %w", err)
	}
	return out, nil
}

// SetAnswer records an update's generated answer.
func (s *Store) SetAnswer(ctx context.Context, updateID int, answer string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE inbox SET answer = ? WHERE update_id = ?`, answer, updateID); err != nil {
		return fmt.Errorf("record answer of update %d: %w", updateID, err)
	}
	return nil
}

// Finish marks an update done and deletes its outbox, in one transaction.
func (s *Store) Finish(ctx context.Context, updateID int, outcome string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("finish update %d: %w", updateID, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE inbox SET outcome = ?, finished_at = ?, answer = NULL WHERE update_id = ?`,
		outcome, time.Now().Unix(), updateID); err != nil {
		return fmt.Errorf("finish update %d: %w", updateID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE update_id = ?`, updateID); err != nil {
		return fmt.Errorf("finish update %d: %w", updateID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("finish update %d: %w", updateID, err)
	}
	return nil
}

// Outgoing reads the seq-th reply of an update.
func (s *Store) Outgoing(ctx context.Context, updateID, seq int) (Outgoing, bool, error) {
	o := Outgoing{UpdateID: updateID, Seq: seq}
	err := s.db.QueryRowContext(ctx, `SELECT chat_id, reply_to, text, state, message_id FROM outbox
		WHERE update_id = ? AND seq = ?`, updateID, seq).Scan(&o.ChatID, &o.ReplyTo, &o.Text, &o.State, &o.MessageID)
	if errors.Is(err, sql.ErrNoRows) {
		return Outgoing{}, false, nil
	}
	if err != nil {
		return Outgoing{}, false, fmt.Errorf("read outbox: %w", err)
	}
	return o, true, nil
}

// Record writes a reply's state.
func (s *Store) Record(ctx context.Context, o Outgoing) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO outbox (update_id, seq, chat_id, reply_to, text, state, message_id)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (update_id, seq) DO UPDATE SET state = excluded.state, message_id = excluded.message_id`,
		o.UpdateID, o.Seq, o.ChatID, o.ReplyTo, o.Text, string(o.State), o.MessageID)
	if err != nil {
		return fmt.Errorf("record reply %d/%d as %s: %w", o.UpdateID, o.Seq, o.State, err)
	}
	return nil
}

// Prune forgets finished updates older than before.
func (s *Store) Prune(ctx context.Context, before time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM inbox WHERE outcome IS NOT NULL AND finished_at < ?`, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("prune inbox: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
