package queries

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain/knowledge"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// KnowledgeSource is a source as the API shows it: what it is, and where its
// ingestion stands (Status processing, ready or failed with Error).
type KnowledgeSource struct {
	ID           uuid.UUID   `json:"id"`
	Kind         string      `json:"kind"`
	Title        string      `json:"title"`
	FileType     string      `json:"file_type,omitempty"`
	FileName     string      `json:"file_name,omitempty"`
	URL          string      `json:"url,omitempty"`
	FetchedURL   string      `json:"fetched_url,omitempty"`
	Question     string      `json:"question,omitempty"`
	Answer       string      `json:"answer,omitempty"`
	Tags         []string    `json:"tags"`
	Source       string      `json:"source,omitempty"`
	AssistantIDs []uuid.UUID `json:"assistant_ids"`
	ExternalID   *string     `json:"external_id"`
	Status       string      `json:"status"`
	Error        *string     `json:"error"`
	Revision     int         `json:"revision"`
	Language     string      `json:"language,omitempty"`
	SizeBytes    int         `json:"size_bytes,omitempty"`
	Pages        int         `json:"pages,omitempty"`
	ChunkCount   int         `json:"chunk_count"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`
	IngestedAt   *time.Time  `json:"ingested_at"`
}

const knowledgeColumns = `id, kind, title, file_type, file_name, url, fetched_url, question, answer, tags, source,
	assistant_ids, external_id, status, error, revision, language, size_bytes, pages, chunk_count, created_at, updated_at, ingested_at`

func scanKnowledge(row pgx.Row) (KnowledgeSource, error) {
	var k KnowledgeSource
	var ext, errText string
	err := row.Scan(&k.ID, &k.Kind, &k.Title, &k.FileType, &k.FileName, &k.URL, &k.FetchedURL, &k.Question, &k.Answer,
		&k.Tags, &k.Source, &k.AssistantIDs, &ext, &k.Status, &errText, &k.Revision, &k.Language, &k.SizeBytes,
		&k.Pages, &k.ChunkCount, &k.CreatedAt, &k.UpdatedAt, &k.IngestedAt)
	if err != nil {
		return k, err
	}
	if ext != "" {
		k.ExternalID = &ext
	}
	if errText != "" {
		k.Error = &errText
	}
	if k.Tags == nil {
		k.Tags = []string{}
	}
	if k.AssistantIDs == nil {
		k.AssistantIDs = []uuid.UUID{}
	}
	return k, nil
}

// GetKnowledgeHandler reads one source from knowledge_sources (projections.Knowledge).
type GetKnowledgeHandler struct{ db RowQuerier }

// NewGetKnowledgeHandler reads through db.
func NewGetKnowledgeHandler(db RowQuerier) GetKnowledgeHandler { return GetKnowledgeHandler{db: db} }

// Handle returns the source id of the organization, or knowledge.ErrNotFound.
func (h GetKnowledgeHandler) Handle(ctx context.Context, organizationID, id uuid.UUID) (KnowledgeSource, error) {
	k, err := scanKnowledge(h.db.QueryRow(ctx, `SELECT `+knowledgeColumns+`
		FROM knowledge_sources WHERE organization_id = $1 AND id = $2`, organizationID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return k, knowledge.ErrNotFound
	}
	if err != nil {
		return k, fmt.Errorf("get knowledge: %w", err)
	}
	return k, nil
}
