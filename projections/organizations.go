package projections

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/organization"
	"github.com/jackc/pgx/v5"
)

// Organizations keeps the organizations and their API credentials queryable
// by client id, for authenticating every request (queries.FindClientHandler),
// and for `companin org list` and `org credentials list`. Revoked credentials
// keep their row, with revoked_at set.
type Organizations struct{}

// Name is the checkpoint name: never rename it.
func (Organizations) Name() string { return "organizations" }

// Handle applies one event. Writes are upserts so a replay changes nothing.
func (Organizations) Handle(ctx context.Context, tx pgx.Tx, e es.Event) error {
	switch e.Type {
	case organization.OrganizationCreatedType:
		var ev organization.OrganizationCreated
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			return fmt.Errorf("organizations projection: %s %s: %w", e.Type, e.ID, err)
		}
		origins := ev.AllowedOrigins
		if origins == nil {
			origins = []string{}
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO organizations (id, name, allowed_origins, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, allowed_origins = EXCLUDED.allowed_origins`,
			ev.OrganizationID, ev.Name, origins, ev.CreatedAt)
		if err != nil {
			return fmt.Errorf("organizations projection: %w", err)
		}
	case organization.CredentialsIssuedType:
		var ev organization.CredentialsIssued
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			return fmt.Errorf("organizations projection: %s %s: %w", e.Type, e.ID, err)
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO organization_credentials (client_id, organization_id, secret_hash, issued_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (client_id) DO UPDATE SET organization_id = EXCLUDED.organization_id, secret_hash = EXCLUDED.secret_hash`,
			ev.ClientID, ev.OrganizationID, ev.SecretHash, ev.IssuedAt)
		if err != nil {
			return fmt.Errorf("organizations projection: %w", err)
		}
	case organization.CredentialsRevokedType:
		var ev organization.CredentialsRevoked
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			return fmt.Errorf("organizations projection: %s %s: %w", e.Type, e.ID, err)
		}
		_, err := tx.Exec(ctx, `
			UPDATE organization_credentials SET revoked_at = $3
			WHERE client_id = $1 AND organization_id = $2 AND revoked_at IS NULL`,
			ev.ClientID, ev.OrganizationID, ev.RevokedAt)
		if err != nil {
			return fmt.Errorf("organizations projection: %w", err)
		}
	case organization.AllowedOriginAddedType:
		var ev organization.AllowedOriginAdded
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			return fmt.Errorf("organizations projection: %s %s: %w", e.Type, e.ID, err)
		}
		_, err := tx.Exec(ctx, `
			UPDATE organizations SET allowed_origins = array_append(allowed_origins, $2)
			WHERE id = $1 AND NOT ($2 = ANY (allowed_origins))`, ev.OrganizationID, ev.Origin)
		if err != nil {
			return fmt.Errorf("organizations projection: %w", err)
		}
	case organization.AllowedOriginRemovedType:
		var ev organization.AllowedOriginRemoved
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			return fmt.Errorf("organizations projection: %s %s: %w", e.Type, e.ID, err)
		}
		_, err := tx.Exec(ctx, `UPDATE organizations SET allowed_origins = array_remove(allowed_origins, $2) WHERE id = $1`,
			ev.OrganizationID, ev.Origin)
		if err != nil {
			return fmt.Errorf("organizations projection: %w", err)
		}
	}
	return nil
}

// Reset empties the read model before a rebuild.
func (Organizations) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE organization_credentials, organizations`)
	return err
}
