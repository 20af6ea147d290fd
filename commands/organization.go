package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/organization"
	"github.com/google/uuid"
)

// updateOrganization loads organization id, lets decide act on it and
// appends what it recorded at the loaded version, in the organization's own
// stream so that auditors see every change (GET /api/v1/events). A concurrent
// change makes it load and decide again, a few times.
func updateOrganization(ctx context.Context, store es.Store, id uuid.UUID, decide func(*organization.Organization) error) (*organization.Organization, es.AppendResult, error) {
	md := es.MetadataFrom(ctx)
	md.OrganizationID = id.String()
	if md.Actor == "" {
		md.Actor = "cli"
	}
	ctx = es.WithMetadata(ctx, md)
	for attempt := 1; ; attempt++ {
		events, err := ReadStream(ctx, store, organization.StreamName(id))
		if errors.Is(err, domain.ErrNotFound) {
			return nil, es.AppendResult{}, fmt.Errorf("%s: %w", id, organization.ErrNotFound)
		}
		if err != nil {
			return nil, es.AppendResult{}, err
		}
		org, err := organization.Load(events)
		if err != nil {
			return nil, es.AppendResult{}, err
		}
		if err := decide(org); err != nil {
			return nil, es.AppendResult{}, err
		}
		recorded := org.Recorded()
		if len(recorded) == 0 {
			last := events[len(events)-1]
			return org, es.AppendResult{NextExpectedVersion: last.Version, Position: last.Position}, nil
		}
		for i := range recorded {
			recorded[i].Metadata = md
		}
		res, err := store.Append(ctx, organization.StreamName(id), es.Exact(org.Version()), recorded...)
		if errors.Is(err, es.ErrWrongExpectedVersion) && attempt < conflictRetries {
			conflictPause(ctx, attempt)
			continue
		}
		if errors.Is(err, es.ErrWrongExpectedVersion) {
			return nil, res, fmt.Errorf("organization %s changed concurrently: %w", id, domain.ErrConflict)
		}
		if err != nil {
			return nil, res, fmt.Errorf("append to %s: %w", organization.StreamName(id), err)
		}
		return org, res, nil
	}
}

// clock returns now, or time.Now when it is nil.
func clock(now func() time.Time) time.Time {
	if now == nil {
		return time.Now()
	}
	return now()
}
