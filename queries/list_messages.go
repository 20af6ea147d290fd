package queries

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/thread"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Message is a message of a session or conversation as clients see it.
// Content is null once the person it belongs to was erased. ReplyTo and
// Sources are set on assistant replies.
type Message struct {
	ID        uuid.UUID        `json:"id"`
	Role      string           `json:"role"`
	Content   *string          `json:"content"`
	Metadata  map[string]any   `json:"metadata"`
	ReplyTo   *uuid.UUID       `json:"reply_to,omitempty"`
	Sources   []message.Source `json:"sources,omitempty"`
	CreatedAt time.Time        `json:"created_at"`
	// Version is the message's place in its stream, for ordering.
	Version int64 `json:"-"`
}

const messageColumns = `id, role, content, metadata, reply_to, sources, created_at, version`

func scanMessage(row pgx.Row) (Message, error) {
	var m Message
	err := row.Scan(&m.ID, &m.Role, &m.Content, &m.Metadata, &m.ReplyTo, &m.Sources, &m.CreatedAt, &m.Version)
	if m.Metadata == nil {
		m.Metadata = map[string]any{}
	}
	m.CreatedAt = m.CreatedAt.UTC()
	return m, err
}

// ListMessagesQuery names a session's or conversation's messages.
type ListMessagesQuery struct {
	Kind     thread.Kind
	ThreadID uuid.UUID
	Page
}

// ListMessagesHandler lists the messages of a session or conversation, oldest first.
type ListMessagesHandler struct{ db resourcesDB }

// NewListMessagesHandler reads through db.
func NewListMessagesHandler(db resourcesDB) ListMessagesHandler { return ListMessagesHandler{db: db} }

// Handle returns one page, whether more follow, and the next page's cursor.
// An unknown or foreign session or conversation is not found.
func (h ListMessagesHandler) Handle(ctx context.Context, org string, q ListMessagesQuery) ([]Message, bool, string, error) {
	after, _, err := parseSeqCursor("messages", q.Cursor)
	if err != nil {
		return nil, false, "", err
	}
	var one int
	err = h.db.QueryRow(ctx, `SELECT 1 FROM `+threadReads[q.Kind].table+` WHERE id = $1 AND organization_id = $2`, q.ThreadID, org).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, "", q.Kind.NotFound()
	}
	if err != nil {
		return nil, false, "", fmt.Errorf("list messages: %w", err)
	}
	rows, err := h.db.Query(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE thread_id = $1 AND version > $2 ORDER BY version LIMIT $3`, q.ThreadID, after, q.limit()+1)
	if err != nil {
		return nil, false, "", fmt.Errorf("list messages: %w", err)
	}
	defer rows.Close()
	out := []Message{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, false, "", fmt.Errorf("list messages: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, "", fmt.Errorf("list messages: %w", err)
	}
	if len(out) <= q.limit() {
		return out, false, "", nil
	}
	out = out[:q.limit()]
	return out, true, seqCursor("messages", out[len(out)-1].Version), nil
}

// GetMessageHandler reads one message by id, within an organization.
type GetMessageHandler struct{ db resourcesDB }

// NewGetMessageHandler reads through db.
func NewGetMessageHandler(db resourcesDB) GetMessageHandler { return GetMessageHandler{db: db} }

// Handle returns the message, or a not-found error.
func (h GetMessageHandler) Handle(ctx context.Context, org string, id uuid.UUID) (Message, error) {
	m, err := scanMessage(h.db.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = $1 AND organization_id = $2`, id, org))
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, errMessageNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("get message: %w", err)
	}
	return m, nil
}

var errMessageNotFound = fmt.Errorf("message not found: %w", domain.ErrNotFound)
