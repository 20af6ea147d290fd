package queries

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// table is the read model of one kind of resource that belongs to an
// organization and is listed newest first by its seq column: assistants,
// widget configurations.
type table[V any] struct {
	// name is the table, and the kind its list cursors name.
	name string
	// columns are selected for scan; seq comes first.
	columns string
	// scan reads one row into a view and its seq.
	scan func(pgx.Row) (v V, seq int64, err error)
	// notFound is the domain's error for an id the organization does not have.
	notFound error
}

// GetHandler reads one resource of an organization.
type GetHandler[V any] struct {
	db resourcesDB
	t  table[V]
}

// Handle returns the resource, or the kind's not-found error (also for
// another organization's or a deleted one).
func (h GetHandler[V]) Handle(ctx context.Context, org string, id uuid.UUID) (V, error) {
	v, _, err := h.t.scan(h.db.QueryRow(ctx, `SELECT `+h.t.columns+` FROM `+h.t.name+` WHERE id = $1 AND organization_id = $2`, id, org))
	if errors.Is(err, pgx.ErrNoRows) {
		var zero V
		return zero, h.t.notFound
	}
	if err != nil {
		var zero V
		return zero, fmt.Errorf("get from %s: %w", h.t.name, err)
	}
	return v, nil
}

// ListHandler lists an organization's resources of one kind, newest first.
type ListHandler[V any] struct {
	db resourcesDB
	t  table[V]
}

// Handle returns one page, whether more follow, and the cursor of the next page.
func (h ListHandler[V]) Handle(ctx context.Context, org string, p Page) ([]V, bool, string, error) {
	before, ok, err := parseSeqCursor(h.t.name, p.Cursor)
	if err != nil {
		return nil, false, "", err
	}
	if !ok {
		before = math.MaxInt64
	}
	rows, err := h.db.Query(ctx, `SELECT `+h.t.columns+` FROM `+h.t.name+`
		WHERE organization_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, org, before, p.limit()+1)
	if err != nil {
		return nil, false, "", fmt.Errorf("list %s: %w", h.t.name, err)
	}
	defer rows.Close()
	out := []V{}
	var last int64
	for rows.Next() {
		if len(out) == p.limit() {
			return out, true, seqCursor(h.t.name, last), nil
		}
		v, seq, err := h.t.scan(rows)
		if err != nil {
			return nil, false, "", fmt.Errorf("list %s: %w", h.t.name, err)
		}
		out, last = append(out, v), seq
	}
	if err := rows.Err(); err != nil {
		return nil, false, "", fmt.Errorf("list %s: %w", h.t.name, err)
	}
	return out, false, "", nil
}
