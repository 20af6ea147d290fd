package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/thread"
	"github.com/companin/companin/domain/usercontext"
	"github.com/companin/companin/domain/widgetconfig"
	"github.com/google/uuid"
)

// Written is what a write use case returns: the id of what it wrote and the
// log position of its append, for the caller to wait on read-your-writes
// (Runtime.WaitForProjections).
type Written struct {
	ID       uuid.UUID
	Position es.Position
}

func assistants(store es.Store) Repository[*assistant.Assistant] {
	return Repository[*assistant.Assistant]{Store: store, Kind: assistant.Kind, New: assistant.New, Decode: assistant.Decode}
}

// threads loads and saves the sessions or the conversations.
func threads(store es.Store, k thread.Kind) Repository[*thread.Thread] {
	return Repository[*thread.Thread]{Store: store, Kind: string(k), Decode: thread.Decode,
		New: func(id uuid.UUID) *thread.Thread { return thread.New(k, id) }}
}

func widgetConfigs(store es.Store) Repository[*widgetconfig.Config] {
	return Repository[*widgetconfig.Config]{Store: store, Kind: widgetconfig.Kind, New: widgetconfig.New, Decode: widgetconfig.Decode}
}

func userContexts(store es.Store) Repository[*usercontext.UserContext] {
	return Repository[*usercontext.UserContext]{Store: store, Kind: usercontext.Kind, New: usercontext.New, Decode: usercontext.Decode}
}

// loadAssistant loads an assistant of the caller's organization; a missing,
// foreign or deleted one is assistant.ErrNotFound.
func loadAssistant(ctx context.Context, store es.Store, id uuid.UUID) (*assistant.Assistant, error) {
	l, err := assistants(store).Load(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, assistant.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return l.Aggregate, nil
}

// reservation reads the reservation of ref in the caller's organization: the
// legacy stream, if any, then the keyed one (usercontext.References). It
// returns the keyed stream's name and version: new events go there.
func reservation(ctx context.Context, store es.Store, keys ReferenceKeys, ref string) (*usercontext.Reservation, string, uint64, error) {
	refs, err := referencesOf(ctx, keys)
	if err != nil {
		return nil, "", 0, err
	}
	org := es.MetadataFrom(ctx).OrganizationID
	var (
		r       usercontext.Reservation
		stream  string
		version uint64
	)
	for _, stream = range refs.Streams(org, ref) {
		version = 0
		events, err := ReadStream(ctx, store, stream)
		if errors.Is(err, domain.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, "", 0, err
		}
		for _, e := range events {
			de, err := usercontext.Decode(e.Type, e.Data)
			if err != nil {
				return nil, "", 0, fmt.Errorf("load %s: %w", stream, err)
			}
			if de != nil {
				r.Apply(de)
			}
		}
		version = events[len(events)-1].Version
	}
	return &r, stream, version, nil
}

// UserContextID finds the user context that ref names in the caller's
// organization: a context id, or else a user_reference. Unknown is
// usercontext.ErrNotFound. Erased contexts are found by id (their stream
// stays), not by reference (erasure released it).
func UserContextID(ctx context.Context, store es.Store, refs ReferenceKeys, ref string) (uuid.UUID, error) {
	id, r, err := findUserContext(ctx, store, refs, ref)
	if err != nil {
		return uuid.Nil, err
	}
	if id == uuid.Nil {
		id = r.Holder()
	}
	if id == uuid.Nil {
		return uuid.Nil, usercontext.ErrNotFound
	}
	return id, nil
}

// findUserContext returns the context whose id is ref, or else the
// reservation of ref as a user_reference.
func findUserContext(ctx context.Context, store es.Store, refs ReferenceKeys, ref string) (uuid.UUID, *usercontext.Reservation, error) {
	if id, err := uuid.Parse(ref); err == nil {
		events, err := store.ReadStream(ctx, StreamName(usercontext.Kind, id), 1, 1)
		switch {
		case err == nil && len(events) == 1:
			org := es.MetadataFrom(ctx).OrganizationID
			if org == "" || events[0].Metadata.OrganizationID == org {
				return id, nil, nil
			}
		case err != nil && !errors.Is(err, es.ErrStreamNotFound):
			return uuid.Nil, nil, fmt.Errorf("find user context %s: %w", ref, err)
		}
	}
	r, _, _, err := reservation(ctx, store, refs, ref)
	if err != nil {
		return uuid.Nil, nil, err
	}
	return uuid.Nil, r, nil
}

// ReferenceKeys gives the keyed namer of user_reference reservation streams
// (secrets.ReferenceKeys in production). Nil names them the legacy, unkeyed
// way: for tests and tools that never see a key.
type ReferenceKeys interface {
	References(ctx context.Context) (usercontext.References, error)
}

func referencesOf(ctx context.Context, keys ReferenceKeys) (usercontext.References, error) {
	if keys == nil {
		return usercontext.References{}, nil
	}
	return keys.References(ctx)
}
