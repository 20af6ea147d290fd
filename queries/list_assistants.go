package queries

import (
	"context"
	"fmt"
	"math"
)

// ListAssistantsHandler lists an organization's assistants, newest first.
type ListAssistantsHandler struct{ db resourcesDB }

// NewListAssistantsHandler reads through db.
func NewListAssistantsHandler(db resourcesDB) ListAssistantsHandler {
	return ListAssistantsHandler{db: db}
}

// Handle returns one page, whether more follow, and the cursor of the next page.
func (h ListAssistantsHandler) Handle(ctx context.Context, org string, p Page) ([]Assistant, bool, string, error) {
	before, ok, err := parseSeqCursor("assistants", p.Cursor)
	if err != nil {
		return nil, false, "", err
	}
	if !ok {
		before = math.MaxInt64
	}
	rows, err := h.db.Query(ctx, `SELECT `+assistantColumns+` FROM assistants
		WHERE organization_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, org, before, p.limit()+1)
	if err != nil {
		return nil, false, "", fmt.Errorf("list assistants: %w", err)
	}
	defer rows.Close()
	out := []Assistant{}
	for rows.Next() {
		a, err := scanAssistant(rows)
		if err != nil {
			return nil, false, "", fmt.Errorf("list assistants: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, false, "", fmt.Errorf("list assistants: %w", err)
	}
	if len(out) <= p.limit() {
		return out, false, "", nil
	}
	out = out[:p.limit()]
	return out, true, seqCursor("assistants", out[len(out)-1].seq), nil
}
