package postgres

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Sessions keeps resumable upload sessions (evidence.UploadSessions) in
// the catalog's database, so a chunk may reach any replica.
type Sessions struct {
	db *sql.DB
}

// Sessions returns the upload sessions in c's database.
func (c *Catalog) Sessions() *Sessions { return &Sessions{db: c.db} }

// Load implements evidence.UploadSessions.
func (s *Sessions) Load(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, `SELECT state FROM upload_sessions WHERE id = $1`, id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return b, err
}

// Save implements evidence.UploadSessions.
func (s *Sessions) Save(ctx context.Context, id string, state []byte, expiresAt time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO upload_sessions (id, state, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, expires_at = excluded.expires_at`, id, state, expiresAt.UnixNano())
	return err
}

// Delete implements evidence.UploadSessions.
func (s *Sessions) Delete(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM upload_sessions WHERE id = $1`, id)
	return err
}

// Expired implements evidence.UploadSessions.
func (s *Sessions) Expired(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM upload_sessions WHERE expires_at < $1`, now.UnixNano())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
