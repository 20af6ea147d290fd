package commands

import (
	"context"
	"errors"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/usercontext"
	"github.com/google/uuid"
)

// SaveUserContext creates the context of a user_reference, or merges traits
// into the existing one (POST /contexts).
type SaveUserContext struct {
	UserReference string
	Traits        map[string]any
}

// SavedUserContext says which context was saved and whether it is new.
type SavedUserContext struct {
	Written
	Created bool
}

// SaveUserContextHandler saves user contexts.
type SaveUserContextHandler struct {
	Store es.Store
	// References names reservation streams (keyed in production).
	References ReferenceKeys
	Now        func() time.Time
}

// Handle reserves the reference for a new context (the reservation stream,
// appended with an expected version, makes references unique per
// organization even under concurrent requests), then creates or merges.
func (h SaveUserContextHandler) Handle(ctx context.Context, cmd SaveUserContext) (SavedUserContext, error) {
	ref, err := usercontext.ParseReference(cmd.UserReference)
	if err != nil {
		return SavedUserContext{}, err
	}
	traits, err := usercontext.ParseTraits(cmd.Traits)
	if err != nil {
		return SavedUserContext{}, err
	}
	for attempt := 1; ; attempt++ {
		r, stream, version, err := reservation(ctx, h.Store, h.References, ref)
		if err != nil {
			return SavedUserContext{}, err
		}
		id := r.Holder()
		if id == uuid.Nil {
			id = r.Reserve(uuid.New())
			_, err := Append(ctx, h.Store, stream, es.Exact(version), r.Changes())
			if errors.Is(err, es.ErrWrongExpectedVersion) && attempt < conflictRetries {
				continue // someone reserved it meanwhile: merge into theirs
			}
			if errors.Is(err, es.ErrWrongExpectedVersion) {
				return SavedUserContext{}, usercontext.ErrReferenceTaken
			}
			if err != nil {
				return SavedUserContext{}, err
			}
		}
		var created bool
		// Upsert: a reservation whose context stream is missing (a crash between
		// the two appends) gets its context now.
		res, err := userContexts(h.Store).Upsert(ctx, id, func(u *usercontext.UserContext) error {
			var err error
			created, err = u.Save(ref, traits, Clock(h.Now))
			return err
		})
		if errors.Is(err, domain.ErrNotFound) {
			return SavedUserContext{}, usercontext.ErrNotFound
		}
		if err != nil {
			return SavedUserContext{}, err
		}
		return SavedUserContext{Written: Written{ID: id, Position: res.Position}, Created: created}, nil
	}
}
