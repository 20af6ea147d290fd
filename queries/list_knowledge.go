package queries

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/companin/companin/domain"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ListKnowledgeQuery pages through an organization's sources, newest first.
// Kind and Status filter when set; AssistantID keeps the sources that
// assistant may use.
type ListKnowledgeQuery struct {
	OrganizationID uuid.UUID
	Kind           string
	Status         string
	AssistantID    uuid.UUID
	Limit          int
	Cursor         string
}

// knowledgeListDB is what listing needs of the database; *pgxpool.Pool has it.
type knowledgeListDB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ListKnowledgeHandler lists knowledge_sources (projections.Knowledge).
type ListKnowledgeHandler struct{ db knowledgeListDB }

// NewListKnowledgeHandler reads through db.
func NewListKnowledgeHandler(db knowledgeListDB) ListKnowledgeHandler {
	return ListKnowledgeHandler{db: db}
}

// Handle returns a page of sources, whether there are more, and the cursor
// of the next page.
func (h ListKnowledgeHandler) Handle(ctx context.Context, q ListKnowledgeQuery) ([]KnowledgeSource, bool, string, error) {
	limit := q.Limit
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	var after *time.Time
	var afterID *uuid.UUID
	if q.Cursor != "" {
		t, id, err := decodeKnowledgeCursor(q.Cursor)
		if err != nil {
			return nil, false, "", err
		}
		after, afterID = &t, &id
	}
	var assistant *uuid.UUID
	if q.AssistantID != uuid.Nil {
		assistant = &q.AssistantID
	}
	rows, err := h.db.Query(ctx, `SELECT `+knowledgeColumns+`
		FROM knowledge_sources
		WHERE organization_id = $1
		  AND ($2 = '' OR kind = $2) AND ($3 = '' OR status = $3)
		  AND ($4::uuid IS NULL OR cardinality(assistant_ids) = 0 OR $4::uuid = ANY (assistant_ids))
		  AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
		ORDER BY created_at DESC, id DESC
		LIMIT $7`, q.OrganizationID, q.Kind, q.Status, assistant, after, afterID, limit+1)
	if err != nil {
		return nil, false, "", fmt.Errorf("list knowledge: %w", err)
	}
	defer rows.Close()
	out := []KnowledgeSource{}
	for rows.Next() {
		k, err := scanKnowledge(rows)
		if err != nil {
			return nil, false, "", fmt.Errorf("list knowledge: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, false, "", fmt.Errorf("list knowledge: %w", err)
	}
	if len(out) <= limit {
		return out, false, "", nil
	}
	out = out[:limit]
	last := out[limit-1]
	return out, true, encodeKnowledgeCursor(last.CreatedAt, last.ID), nil
}

func encodeKnowledgeCursor(t time.Time, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(t.UTC().Format(time.RFC3339Nano) + "|" + id.String()))
}

func decodeKnowledgeCursor(c string) (time.Time, uuid.UUID, error) {
	bad := domain.Invalid("cursor", "is not a cursor this API returned")
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, uuid.Nil, bad
	}
	ts, idText, ok := strings.Cut(string(raw), "|")
	if !ok {
		return time.Time{}, uuid.Nil, bad
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, uuid.Nil, bad
	}
	id, err := uuid.Parse(idText)
	if err != nil {
		return time.Time{}, uuid.Nil, bad
	}
	return t, id, nil
}
