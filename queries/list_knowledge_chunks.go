package queries

import (
	"context"
	"fmt"
	"strconv"

	"github.com/companin/companin/domain"
	"github.com/google/uuid"
)

// KnowledgeChunk is one searchable passage of a source, as chunking cut it:
// shown so that a person can see why a question finds (or misses) it.
type KnowledgeChunk struct {
	ID        uuid.UUID `json:"id"`
	Index     int       `json:"index"`
	TitlePath []string  `json:"title_path"`
	Page      int       `json:"page,omitempty"`
	Start     int       `json:"start"`
	End       int       `json:"end"`
	Words     int       `json:"words"`
	Text      string    `json:"text"`
}

// ListKnowledgeChunksHandler lists a source's chunks in document order
// (knowledge_chunks, projections.Knowledge).
type ListKnowledgeChunksHandler struct{ db knowledgeListDB }

// NewListKnowledgeChunksHandler reads through db.
func NewListKnowledgeChunksHandler(db knowledgeListDB) ListKnowledgeChunksHandler {
	return ListKnowledgeChunksHandler{db: db}
}

// Handle returns up to limit chunks of source id after cursor (an index),
// whether there are more, and the next cursor. An unknown source has none.
func (h ListKnowledgeChunksHandler) Handle(ctx context.Context, organizationID, id uuid.UUID, limit int, cursor string) ([]KnowledgeChunk, bool, string, error) {
	after := -1
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n < 0 {
			return nil, false, "", domain.Invalid("cursor", "is not a cursor this API returned")
		}
		after = n
	}
	rows, err := h.db.Query(ctx, `
		SELECT id, ord, title_path, page, start_offset, end_offset, array_length(regexp_split_to_array(trim(body), '\s+'), 1), body
		FROM knowledge_chunks WHERE organization_id = $1 AND knowledge_id = $2 AND ord > $3
		ORDER BY ord LIMIT $4`, organizationID, id, after, limit+1)
	if err != nil {
		return nil, false, "", fmt.Errorf("list knowledge chunks: %w", err)
	}
	defer rows.Close()
	out := []KnowledgeChunk{}
	for rows.Next() {
		var c KnowledgeChunk
		if err := rows.Scan(&c.ID, &c.Index, &c.TitlePath, &c.Page, &c.Start, &c.End, &c.Words, &c.Text); err != nil {
			return nil, false, "", fmt.Errorf("list knowledge chunks: %w", err)
		}
		if c.TitlePath == nil {
			c.TitlePath = []string{}
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, false, "", fmt.Errorf("list knowledge chunks: %w", err)
	}
	if len(out) <= limit {
		return out, false, "", nil
	}
	out = out[:limit]
	return out, true, strconv.Itoa(out[limit-1].Index), nil
}
