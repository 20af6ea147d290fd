package commands

import (
	"context"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
)

// AddKnowledgeFile is an uploaded document. The bytes go into the log; the
// ingestion worker extracts and indexes them in the background.
type AddKnowledgeFile struct {
	knowledge.Common
	FileType string
	FileName string
	Content  []byte
}

// AddKnowledgeFileHandler registers uploaded files.
type AddKnowledgeFileHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle registers the file (or replaces the one with the same external_id).
func (h AddKnowledgeFileHandler) Handle(ctx context.Context, cmd AddKnowledgeFile) (Written, error) {
	spec, err := knowledge.ParseFile(cmd.Common, cmd.FileType, cmd.FileName, cmd.Content)
	if err != nil {
		return Written{}, err
	}
	return putKnowledge(ctx, h.Store, spec, h.Now)
}
