package queries

import (
	"context"
	"fmt"
	"math"

	"github.com/companin/companin/domain/thread"
)

// ListConversationsQuery filters an organization's conversations.
type ListConversationsQuery struct {
	// CustomerID keeps one customer's conversations ("" all).
	CustomerID string
	Page
}

// ListConversationsHandler lists conversations, newest first.
type ListConversationsHandler struct{ db resourcesDB }

// NewListConversationsHandler reads through db.
func NewListConversationsHandler(db resourcesDB) ListConversationsHandler {
	return ListConversationsHandler{db: db}
}

// Handle returns one page, whether more follow, and the next page's cursor.
func (h ListConversationsHandler) Handle(ctx context.Context, org string, q ListConversationsQuery) ([]Thread, bool, string, error) {
	before, ok, err := parseSeqCursor("conversations", q.Cursor)
	if err != nil {
		return nil, false, "", err
	}
	if !ok {
		before = math.MaxInt64
	}
	r := threadReads[thread.Conversation]
	rows, err := h.db.Query(ctx, r.query(`WHERE organization_id = $1 AND seq < $2 AND ($3 = '' OR customer_id = $3)
		ORDER BY seq DESC LIMIT $4`), org, before, q.CustomerID, q.limit()+1)
	if err != nil {
		return nil, false, "", fmt.Errorf("list conversations: %w", err)
	}
	defer rows.Close()
	out := []Thread{}
	for rows.Next() {
		c, err := r.scan(rows)
		if err != nil {
			return nil, false, "", fmt.Errorf("list conversations: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, false, "", fmt.Errorf("list conversations: %w", err)
	}
	if len(out) <= q.limit() {
		return out, false, "", nil
	}
	out = out[:q.limit()]
	return out, true, seqCursor("conversations", out[len(out)-1].seq), nil
}
