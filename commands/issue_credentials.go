package commands

import (
	"context"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/organization"
	"github.com/google/uuid"
)

// IssueCredentials gives an organization one more API key pair (`companin
// org credentials create`). An organization may hold several at once, so a
// secret can be rotated without downtime: issue, deploy, revoke the old one.
type IssueCredentials struct {
	OrganizationID uuid.UUID
}

// IssuedCredentials is shown once: only the secret's hash is stored.
type IssuedCredentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	// Position is where the event landed in the log.
	Position es.Position `json:"-"`
}

// IssueCredentialsHandler appends CredentialsIssued.
type IssueCredentialsHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle issues a fresh client id and secret.
func (h IssueCredentialsHandler) Handle(ctx context.Context, cmd IssueCredentials) (IssuedCredentials, error) {
	clientID, secret, err := NewClientCredentials()
	if err != nil {
		return IssuedCredentials{}, err
	}
	now := clock(h.Now)
	_, res, err := updateOrganization(ctx, h.Store, cmd.OrganizationID, func(o *organization.Organization) error {
		return o.IssueCredentials(clientID, organization.HashSecret(secret), now)
	})
	if err != nil {
		return IssuedCredentials{}, err
	}
	return IssuedCredentials{ClientID: clientID, ClientSecret: secret, Position: res.Position}, nil
}
