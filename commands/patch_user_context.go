package commands

import (
	"context"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/usercontext"
)

// PatchUserContext merges traits (RFC 7386) into a context named by id or user_reference.
type PatchUserContext struct {
	Ref    string
	Traits map[string]any
}

// PatchUserContextHandler patches user contexts.
type PatchUserContextHandler struct {
	Store      es.Store
	References ReferenceKeys
	Now        func() time.Time
}

// Handle merges the traits; an unknown or erased context is not found.
func (h PatchUserContextHandler) Handle(ctx context.Context, cmd PatchUserContext) (Written, error) {
	traits, err := usercontext.ParseTraits(cmd.Traits)
	if err != nil {
		return Written{}, err
	}
	id, err := UserContextID(ctx, h.Store, h.References, cmd.Ref)
	if err != nil {
		return Written{}, err
	}
	return change(ctx, userContexts(h.Store), id, usercontext.ErrNotFound, func(u *usercontext.UserContext) error {
		return u.Merge(traits, Clock(h.Now))
	})
}
