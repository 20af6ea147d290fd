package commands

import (
	"context"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
)

// AddKnowledgeURL is a web page to fetch and index in the background.
type AddKnowledgeURL struct {
	knowledge.Common
	URL string
}

// AddKnowledgeURLHandler registers web pages.
type AddKnowledgeURLHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle registers the page (or replaces the one with the same external_id).
func (h AddKnowledgeURLHandler) Handle(ctx context.Context, cmd AddKnowledgeURL) (Written, error) {
	spec, err := knowledge.ParseURL(cmd.Common, cmd.URL)
	if err != nil {
		return Written{}, err
	}
	return putKnowledge(ctx, h.Store, spec, h.Now)
}
