package commands

import (
	"context"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
)

// AddKnowledgeQA is a question and its answer, searchable at once.
type AddKnowledgeQA struct {
	knowledge.Common
	Question string
	Answer   string
}

// AddKnowledgeQAHandler registers Q&A pairs.
type AddKnowledgeQAHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle registers the pair (or replaces the one with the same external_id).
func (h AddKnowledgeQAHandler) Handle(ctx context.Context, cmd AddKnowledgeQA) (Written, error) {
	spec, err := knowledge.ParseQA(cmd.Common, cmd.Question, cmd.Answer)
	if err != nil {
		return Written{}, err
	}
	return putKnowledge(ctx, h.Store, spec, h.Now)
}
