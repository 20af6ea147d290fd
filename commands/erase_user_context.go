package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/thread"
	"github.com/companin/companin/domain/usercontext"
	"github.com/google/uuid"
)

// Eraser destroys a data subject's key, so that every personal field
// encrypted with it becomes unreadable for good (crypto-shredding). The
// shredding store's key store implements it.
type Eraser interface {
	Erase(ctx context.Context, subject string) error
}

// ResponseForgetter forgets what was kept outside the log about a subject:
// the stored responses of idempotent requests (they repeat traits, titles,
// message contents).
type ResponseForgetter interface {
	ForgetSubject(ctx context.Context, org, subject string) error
}

// PersonalFields lists, per event type, the fields that name or describe
// the person of the event's subject today. Events written before a field was
// listed hold it in the clear; the shredding store nulls those too once the
// subject is erased (shred.Redact), so that exports and rebuilds show none.
func PersonalFields() map[string][]string {
	return map[string][]string{
		usercontext.TypeCreated:        {"user_reference", "traits"},
		usercontext.TypeTraitsChanged:  {"traits"},
		thread.TypeConversationStarted: thread.ConversationPersonalFields,
		message.TypePosted:             message.PersonalFields,
	}
}

// EraseUserContext forgets a person (DELETE /contexts/{id or user_reference}).
type EraseUserContext struct {
	Ref string
}

// ErasedUserContext is the result of an erasure, the same for every retry.
type ErasedUserContext struct {
	Written
	ErasedAt time.Time
}

// EraseUserContextHandler erases user contexts.
type EraseUserContextHandler struct {
	Store es.Store
	// References names reservation streams (keyed in production).
	References ReferenceKeys
	// Eraser destroys the context's key; nil only where no shredding store
	// is configured (then personal fields stay in the log).
	Eraser Eraser
	// Responses forgets stored idempotent responses; nil: none are kept.
	Responses ResponseForgetter
	Now       func() time.Time
}

// Handle records UserContextErased (who, when), frees the user_reference,
// destroys the key and forgets stored responses, in that order: until the
// key is destroyed the reference can still be read to free it, and every
// step is idempotent. So a retry after a failure anywhere completes the
// erasure, and a retry after success (by id, or by the reference it freed)
// answers the same result instead of "not found".
func (h EraseUserContextHandler) Handle(ctx context.Context, cmd EraseUserContext) (ErasedUserContext, error) {
	id, r, err := findUserContext(ctx, h.Store, h.References, cmd.Ref)
	if err != nil {
		return ErasedUserContext{}, err
	}
	if id == uuid.Nil {
		// By reference: its holder, or the context whose erasure freed it.
		if id = r.Holder(); id == uuid.Nil {
			id = r.Released()
		}
	}
	if id == uuid.Nil {
		return ErasedUserContext{}, usercontext.ErrNotFound
	}
	l, err := userContexts(h.Store).Load(ctx, id)
	if errors.Is(err, domain.ErrNotFound) || (err == nil && !l.Aggregate.Created()) {
		return ErasedUserContext{}, usercontext.ErrNotFound
	}
	if err != nil {
		return ErasedUserContext{}, err
	}
	u, pos := l.Aggregate, l.Position
	if u.Exists() {
		res, err := userContexts(h.Store).Update(ctx, id, func(cur *usercontext.UserContext) error {
			u = cur
			if !cur.Exists() {
				return nil // erased meanwhile by a concurrent DELETE: same result
			}
			return cur.Erase(es.MetadataFrom(ctx).Actor, Clock(h.Now))
		})
		if err != nil {
			return ErasedUserContext{}, err
		}
		pos = res.Position
	}
	if ref := u.Reference(); ref != "" {
		if err := h.release(ctx, ref, id); err != nil {
			return ErasedUserContext{}, err
		}
	}
	if h.Eraser != nil {
		if err := h.Eraser.Erase(ctx, id.String()); err != nil {
			return ErasedUserContext{}, fmt.Errorf("destroy key of %s: %w", id, err)
		}
	}
	if h.Responses != nil {
		if err := h.Responses.ForgetSubject(ctx, es.MetadataFrom(ctx).OrganizationID, id.String()); err != nil {
			return ErasedUserContext{}, fmt.Errorf("forget stored responses of %s: %w", id, err)
		}
	}
	return ErasedUserContext{Written: Written{ID: id, Position: pos}, ErasedAt: u.ErasedAt()}, nil
}

func (h EraseUserContextHandler) release(ctx context.Context, ref string, id uuid.UUID) error {
	r, stream, version, err := reservation(ctx, h.Store, h.References, ref)
	if err != nil {
		return err
	}
	r.Release(id)
	if len(r.Changes()) == 0 {
		return nil
	}
	if _, err := Append(ctx, h.Store, stream, es.Exact(version), r.Changes()); err != nil {
		return fmt.Errorf("release user_reference: %w", err)
	}
	return nil
}
