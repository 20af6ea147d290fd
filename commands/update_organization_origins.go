package commands

import (
	"context"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/organization"
	"github.com/google/uuid"
)

// UpdateOrganizationOrigins adds and removes the browser origins the
// organization's widget may run on (`companin org update`). Removals apply
// after additions, so naming an origin in both removes it.
type UpdateOrganizationOrigins struct {
	OrganizationID uuid.UUID
	Add, Remove    []string
}

// UpdatedOrganization is the organization after the change.
type UpdatedOrganization struct {
	OrganizationID uuid.UUID `json:"organization_id"`
	Name           string    `json:"name"`
	AllowedOrigins []string  `json:"allowed_origins"`
	// Position is where the change landed in the log (or the stream's last
	// event when nothing changed), for waiting on projections.
	Position es.Position `json:"-"`
}

// UpdateOrganizationOriginsHandler appends AllowedOriginAdded and
// AllowedOriginRemoved events.
type UpdateOrganizationOriginsHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Handle applies the whole change in one append, or nothing of it.
func (h UpdateOrganizationOriginsHandler) Handle(ctx context.Context, cmd UpdateOrganizationOrigins) (UpdatedOrganization, error) {
	now := clock(h.Now)
	org, res, err := updateOrganization(ctx, h.Store, cmd.OrganizationID, func(o *organization.Organization) error {
		for _, origin := range cmd.Add {
			if err := o.AddAllowedOrigin(origin, now); err != nil {
				return err
			}
		}
		for _, origin := range cmd.Remove {
			if err := o.RemoveAllowedOrigin(origin, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return UpdatedOrganization{}, err
	}
	origins := org.AllowedOrigins()
	if origins == nil {
		origins = []string{}
	}
	return UpdatedOrganization{OrganizationID: org.ID(), Name: org.Name(), AllowedOrigins: origins, Position: res.Position}, nil
}
