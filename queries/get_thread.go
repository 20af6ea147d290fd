package queries

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain/thread"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Thread is a session or a conversation as clients see it
// (projections.Conversations). The fields of one kind only are embedded
// behind pointers, so a session shows no customer_id and a conversation no
// visitor_id.
type Thread struct {
	ID          uuid.UUID `json:"id"`
	AssistantID uuid.UUID `json:"assistant_id"`
	*Visitor
	*Customer
	Locale       string         `json:"locale"`
	Metadata     map[string]any `json:"metadata"`
	MessageCount int            `json:"message_count"`
	CreatedAt    time.Time      `json:"created_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
	seq          int64
}

// Visitor is who a session is with.
type Visitor struct {
	VisitorID string `json:"visitor_id"`
}

// Customer is who a conversation is with.
type Customer struct {
	CustomerID    string     `json:"customer_id"`
	UserContextID *uuid.UUID `json:"user_context_id"`
	Title         string     `json:"title"`
}

// threadRead is what the read model keeps of one kind of thread: its
// table, and the columns and scan targets of its own fields.
type threadRead struct {
	table   string
	columns string
	fields  func(t *Thread) []any
}

var threadReads = map[thread.Kind]threadRead{
	thread.Session: {table: "sessions", columns: "visitor_id", fields: func(t *Thread) []any {
		t.Visitor = &Visitor{}
		return []any{&t.VisitorID}
	}},
	thread.Conversation: {table: "conversations", columns: "customer_id, user_context_id, title", fields: func(t *Thread) []any {
		t.Customer = &Customer{}
		return []any{&t.CustomerID, &t.UserContextID, &t.Title}
	}},
}

func (r threadRead) query(where string) string {
	return `SELECT seq, id, assistant_id, ` + r.columns + `, locale, metadata, message_count, created_at, updated_at
		FROM ` + r.table + ` ` + where
}

func (r threadRead) scan(row pgx.Row) (Thread, error) {
	var t Thread
	dest := append([]any{&t.seq, &t.ID, &t.AssistantID}, r.fields(&t)...)
	err := row.Scan(append(dest, &t.Locale, &t.Metadata, &t.MessageCount, &t.CreatedAt, &t.UpdatedAt)...)
	if t.Metadata == nil {
		t.Metadata = map[string]any{}
	}
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	return t, err
}

// GetThreadHandler reads one session or conversation of an organization.
type GetThreadHandler struct{ db resourcesDB }

// NewGetThreadHandler reads through db.
func NewGetThreadHandler(db resourcesDB) GetThreadHandler { return GetThreadHandler{db: db} }

// Handle returns the thread, or the kind's not-found error (also for
// another organization's).
func (h GetThreadHandler) Handle(ctx context.Context, org string, kind thread.Kind, id uuid.UUID) (Thread, error) {
	r := threadReads[kind]
	t, err := r.scan(h.db.QueryRow(ctx, r.query(`WHERE id = $1 AND organization_id = $2`), id, org))
	if errors.Is(err, pgx.ErrNoRows) {
		return Thread{}, kind.NotFound()
	}
	if err != nil {
		return Thread{}, fmt.Errorf("get %s: %w", kind, err)
	}
	return t, nil
}
