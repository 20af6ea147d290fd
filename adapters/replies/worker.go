package replies

import (
	"context"
	"strings"

	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/answer"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/queries"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// NewWorker wires the reply worker: knowledge retrieval from the knowledge
// read model, the engine, and progress notifications to waiting requests
// (through hub, the process's).
func NewWorker(store es.Store, pool *pgxpool.Pool, engine answer.StreamingEngine, hub *Hub) commands.AnswerMessageHandler {
	return commands.AnswerMessageHandler{
		Store:     store,
		Engine:    engine,
		Retriever: Knowledge(queries.NewSearchKnowledgeHandler(pool)),
		Notifier:  hub,
	}
}

// Register adds the reply worker to the runtime: shared by every process,
// at-least-once, answered once.
func Register(rt *messaging.Runtime, h commands.AnswerMessageHandler) {
	rt.AddWorker(commands.ReplyWorkerName, commands.ReplyWorkerFilter, h.Handle)
}

// Searcher is the knowledge search (queries.SearchKnowledgeHandler).
type Searcher interface {
	Handle(ctx context.Context, q queries.SearchKnowledgeQuery) ([]queries.Passage, error)
}

// Knowledge adapts the knowledge search to the reply worker's Retriever.
func Knowledge(s Searcher) commands.Retriever {
	return commands.RetrieverFunc(func(ctx context.Context, org, asst uuid.UUID, question string, limit int) ([]answer.Passage, error) {
		if len([]rune(question)) > queries.MaxSearchQuery {
			question = string([]rune(question)[:queries.MaxSearchQuery])
		}
		found, err := s.Handle(ctx, queries.SearchKnowledgeQuery{OrganizationID: org, AssistantID: asst, Query: question, Limit: limit})
		if err != nil {
			return nil, err
		}
		out := make([]answer.Passage, 0, len(found))
		for _, p := range found {
			ps := answer.Passage{KnowledgeID: p.KnowledgeID.String(), ChunkID: p.ChunkID.String(), Title: p.Title,
				Kind: answer.Chunk, Text: p.Text, Score: p.Score, Page: p.Page, Tags: p.Tags}
			if p.Kind == "qa" {
				ps.Kind, ps.Question, ps.Text = answer.QA, p.Question, p.Answer
			} else if n := len(p.TitlePath); n > 0 && !strings.Contains(p.Text, p.TitlePath[n-1]) {
				// The heading a chunk stands under tells what it is about.
				ps.Text = "# " + p.TitlePath[n-1] + "\n" + p.Text
			}
			out = append(out, ps)
		}
		return out, nil
	})
}
