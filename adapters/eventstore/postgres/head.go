package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5"
)

// Head returns the position of the last committed event, including one that
// ReadAll does not show yet because an older transaction (anywhere on the
// server) is still open. Catch-up tools wait until their readers reach it, so
// "caught up" does not stop short of a commit that is merely held back.
func (s *Store) Head(ctx context.Context) (es.Position, error) {
	var p position
	err := s.pool.QueryRow(ctx, `
		SELECT e.epoch, e.transaction_id::text AS txid, e.global_position FROM events e
		ORDER BY e.epoch DESC, e.transaction_id DESC, e.global_position DESC LIMIT 1`).Scan(&p.epoch, &p.txid, &p.global)
	if errors.Is(err, pgx.ErrNoRows) {
		return es.Start, nil
	}
	if err != nil {
		return es.Start, fmt.Errorf("event store: head: %w", err)
	}
	return p.encode(), nil
}
