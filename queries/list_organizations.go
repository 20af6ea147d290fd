package queries

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ErrOrganizationNotFound: no organization with this id or client id (or not yet projected).
var ErrOrganizationNotFound = fmt.Errorf("organization not found: %w", domain.ErrNotFound)

// Organization is one row of `companin org list`.
type Organization struct {
	ID             uuid.UUID `json:"organization_id"`
	Name           string    `json:"name"`
	AllowedOrigins []string  `json:"allowed_origins"`
	CreatedAt      time.Time `json:"created_at"`
	// ActiveCredentials counts the client ids that are not revoked.
	ActiveCredentials int `json:"active_credentials"`
}

// Credential is one row of `companin org credentials list`: never the secret
// or its hash.
type Credential struct {
	ClientID  string     `json:"client_id"`
	IssuedAt  time.Time  `json:"issued_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	Active    bool       `json:"active"`
}

// Querier is what the organization queries need; *pgxpool.Pool has it.
type Querier interface {
	RowQuerier
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ListOrganizations reads the organizations read model (projections.Organizations)
// for operators: every organization, oldest first.
func ListOrganizations(ctx context.Context, db Querier) ([]Organization, error) {
	rows, err := db.Query(ctx, `
		SELECT o.id, o.name, o.allowed_origins, o.created_at,
		       (SELECT count(*) FROM organization_credentials c WHERE c.organization_id = o.id AND c.revoked_at IS NULL)
		FROM organizations o ORDER BY o.created_at, o.id`)
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Organization, error) {
		var o Organization
		err := row.Scan(&o.ID, &o.Name, &o.AllowedOrigins, &o.CreatedAt, &o.ActiveCredentials)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	return out, nil
}

// ListCredentials lists an organization's client ids, revoked ones included,
// oldest first.
func ListCredentials(ctx context.Context, db Querier, org uuid.UUID) ([]Credential, error) {
	rows, err := db.Query(ctx, `
		SELECT client_id, issued_at, revoked_at FROM organization_credentials
		WHERE organization_id = $1 ORDER BY issued_at, client_id`, org)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Credential, error) {
		var c Credential
		err := row.Scan(&c.ClientID, &c.IssuedAt, &c.RevokedAt)
		c.Active = c.RevokedAt == nil
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	return out, nil
}

// ResolveOrganization finds the organization ref names: its id, or one of
// its client ids (revoked ones included).
func ResolveOrganization(ctx context.Context, db RowQuerier, ref string) (uuid.UUID, error) {
	var id uuid.UUID
	var err error
	if parsed, perr := uuid.Parse(ref); perr == nil {
		err = db.QueryRow(ctx, `SELECT id FROM organizations WHERE id = $1`, parsed).Scan(&id)
	} else {
		err = db.QueryRow(ctx, `SELECT organization_id FROM organization_credentials WHERE client_id = $1`, ref).Scan(&id)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, fmt.Errorf("%q: %w", ref, ErrOrganizationNotFound)
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("resolve organization: %w", err)
	}
	return id, nil
}
