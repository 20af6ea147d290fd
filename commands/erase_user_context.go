package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/usercontext"
	"github.com/google/uuid"
)

// Eraser destroys a data subject's key, so that every personal field
// encrypted with it becomes unreadable for good (crypto-shredding). The
// shredding store's key store implements it.
type Eraser interface {
	Erase(ctx context.Context, subject string) error
}

// EraseUserContext forgets a person (DELETE /contexts/{id or user_reference}).
type EraseUserContext struct {
	Ref string
}

// EraseUserContextHandler erases user contexts.
type EraseUserContextHandler struct {
	Store es.Store
	// Eraser destroys the context's key; nil only where no shredding store
	// is configured (then personal fields stay in the log).
	Eraser Eraser
	Now    func() time.Time
}

// Handle records UserContextErased (who, when), frees the user_reference and
// destroys the key. A context erased before is not found, but its key is
// destroyed again, so a retry after a failed destroy completes the erasure.
func (h EraseUserContextHandler) Handle(ctx context.Context, cmd EraseUserContext) (Written, error) {
	id, err := UserContextID(ctx, h.Store, cmd.Ref)
	if err != nil {
		return Written{}, err
	}
	var ref string
	res, err := userContexts(h.Store).Update(ctx, id, func(u *usercontext.UserContext) error {
		ref = u.Reference()
		return u.Erase(es.MetadataFrom(ctx).Actor, Clock(h.Now))
	})
	if errors.Is(err, domain.ErrNotFound) {
		if derr := h.destroy(ctx, id.String()); derr != nil {
			return Written{}, derr
		}
		return Written{}, usercontext.ErrNotFound
	}
	if err != nil {
		return Written{}, err
	}
	if ref != "" {
		if err := h.release(ctx, ref, id); err != nil {
			return Written{}, err
		}
	}
	if err := h.destroy(ctx, id.String()); err != nil {
		return Written{}, err
	}
	return Written{ID: id, Position: res.Position}, nil
}

func (h EraseUserContextHandler) release(ctx context.Context, ref string, id uuid.UUID) error {
	r, version, err := reservation(ctx, h.Store, ref)
	if err != nil {
		return err
	}
	r.Release(id)
	if len(r.Changes()) == 0 {
		return nil
	}
	stream := usercontext.ReferenceStream(es.MetadataFrom(ctx).OrganizationID, ref)
	if _, err := Append(ctx, h.Store, stream, es.Exact(version), r.Changes()); err != nil {
		return fmt.Errorf("release user_reference: %w", err)
	}
	return nil
}

func (h EraseUserContextHandler) destroy(ctx context.Context, subject string) error {
	if h.Eraser == nil {
		return nil
	}
	if err := h.Eraser.Erase(ctx, subject); err != nil {
		return fmt.Errorf("destroy key of %s: %w", subject, err)
	}
	return nil
}
