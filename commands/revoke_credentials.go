package commands

import (
	"context"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/organization"
	"github.com/google/uuid"
)

// RevokeCredentials stops an API key pair, and the widget tokens issued for
// its client id, from authenticating (`companin org credentials revoke`).
type RevokeCredentials struct {
	OrganizationID uuid.UUID
	ClientID       string
}

// RevokeCredentialsHandler appends CredentialsRevoked.
type RevokeCredentialsHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle revokes; revoking a revoked client changes nothing and succeeds.
// It returns the position the read models must reach to refuse the client.
func (h RevokeCredentialsHandler) Handle(ctx context.Context, cmd RevokeCredentials) (es.Position, error) {
	now := clock(h.Now)
	_, res, err := updateOrganization(ctx, h.Store, cmd.OrganizationID, func(o *organization.Organization) error {
		return o.RevokeCredentials(cmd.ClientID, now)
	})
	return res.Position, err
}
