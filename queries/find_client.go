package queries

import (
	"context"
	"errors"
	"fmt"

	"github.com/companin/companin/domain"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ErrClientNotFound: no credentials with this client id, or revoked ones (or not yet projected).
var ErrClientNotFound = fmt.Errorf("client not found: %w", domain.ErrNotFound)

// Client is what authenticating a caller needs to know of an API client.
type Client struct {
	ClientID       string
	OrganizationID uuid.UUID
	// SecretHash is organization.HashSecret of the client secret.
	SecretHash string
	// AllowedOrigins are the browser origins the organization's widget may
	// run on; empty allows any.
	AllowedOrigins []string
}

// RowQuerier is the one method the lookup needs; *pgxpool.Pool and pgx.Tx have it.
type RowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// FindClientHandler looks an API client up in the organizations read model
// (projections.Organizations), once per authenticated request.
type FindClientHandler struct{ db RowQuerier }

// NewFindClientHandler reads through db.
func NewFindClientHandler(db RowQuerier) FindClientHandler { return FindClientHandler{db: db} }

// Handle returns the client with clientID, or ErrClientNotFound.
func (h FindClientHandler) Handle(ctx context.Context, clientID string) (Client, error) {
	c := Client{ClientID: clientID}
	err := h.db.QueryRow(ctx, `
		SELECT c.organization_id, c.secret_hash, o.allowed_origins
		FROM organization_credentials c JOIN organizations o ON o.id = c.organization_id
		WHERE c.client_id = $1 AND c.revoked_at IS NULL`, clientID).Scan(&c.OrganizationID, &c.SecretHash, &c.AllowedOrigins)
	if errors.Is(err, pgx.ErrNoRows) {
		return Client{}, ErrClientNotFound
	}
	if err != nil {
		return Client{}, fmt.Errorf("find client: %w", err)
	}
	return c, nil
}
