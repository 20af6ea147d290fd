package queries

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain/session"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Session is a session as clients see it (projections.Conversations).
type Session struct {
	ID           uuid.UUID      `json:"id"`
	AssistantID  uuid.UUID      `json:"assistant_id"`
	VisitorID    string         `json:"visitor_id"`
	Locale       string         `json:"locale"`
	Metadata     map[string]any `json:"metadata"`
	MessageCount int            `json:"message_count"`
	CreatedAt    time.Time      `json:"created_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
}

// GetSessionHandler reads one session of an organization.
type GetSessionHandler struct{ db resourcesDB }

// NewGetSessionHandler reads through db.
func NewGetSessionHandler(db resourcesDB) GetSessionHandler { return GetSessionHandler{db: db} }

// Handle returns the session, or session.ErrNotFound (also for another organization's).
func (h GetSessionHandler) Handle(ctx context.Context, org string, id uuid.UUID) (Session, error) {
	var s Session
	err := h.db.QueryRow(ctx, `
		SELECT id, assistant_id, visitor_id, locale, metadata, message_count, created_at, updated_at
		FROM sessions WHERE id = $1 AND organization_id = $2`, id, org).
		Scan(&s.ID, &s.AssistantID, &s.VisitorID, &s.Locale, &s.Metadata, &s.MessageCount, &s.CreatedAt, &s.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, session.ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("get session: %w", err)
	}
	if s.Metadata == nil {
		s.Metadata = map[string]any{}
	}
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return s, nil
}
