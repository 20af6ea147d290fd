package queries

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain/conversation"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Conversation is a conversation as clients see it (projections.Conversations).
type Conversation struct {
	ID            uuid.UUID      `json:"id"`
	AssistantID   uuid.UUID      `json:"assistant_id"`
	CustomerID    string         `json:"customer_id"`
	UserContextID *uuid.UUID     `json:"user_context_id"`
	Title         string         `json:"title"`
	Locale        string         `json:"locale"`
	Metadata      map[string]any `json:"metadata"`
	MessageCount  int            `json:"message_count"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
	seq           int64
}

const conversationColumns = `seq, id, assistant_id, customer_id, user_context_id, title, locale, metadata, message_count, created_at, updated_at`

func scanConversation(row pgx.Row) (Conversation, error) {
	var c Conversation
	err := row.Scan(&c.seq, &c.ID, &c.AssistantID, &c.CustomerID, &c.UserContextID, &c.Title, &c.Locale, &c.Metadata, &c.MessageCount, &c.CreatedAt, &c.UpdatedAt)
	if c.Metadata == nil {
		c.Metadata = map[string]any{}
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, err
}

// GetConversationHandler reads one conversation of an organization.
type GetConversationHandler struct{ db resourcesDB }

// NewGetConversationHandler reads through db.
func NewGetConversationHandler(db resourcesDB) GetConversationHandler {
	return GetConversationHandler{db: db}
}

// Handle returns the conversation, or conversation.ErrNotFound (also for another organization's).
func (h GetConversationHandler) Handle(ctx context.Context, org string, id uuid.UUID) (Conversation, error) {
	c, err := scanConversation(h.db.QueryRow(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE id = $1 AND organization_id = $2`, id, org))
	if errors.Is(err, pgx.ErrNoRows) {
		return Conversation{}, conversation.ErrNotFound
	}
	if err != nil {
		return Conversation{}, fmt.Errorf("get conversation: %w", err)
	}
	return c, nil
}
