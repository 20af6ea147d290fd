// Package commands holds one handler per use case. Each handler parses its
// input into domain values, loads the aggregate's stream, lets the aggregate
// decide, and appends what it recorded with the version it loaded. Nothing else.
package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// Aggregate is what the shared loader needs of a domain aggregate: replay
// stored events, and hand over the new ones it recorded.
type Aggregate interface {
	Apply(e domain.Event)
	Changes() []domain.Event
}

// Decoder turns a stored event into the aggregate's domain event. It returns
// (nil, nil) for types the aggregate does not know, so that other features can
// add events to a stream without breaking its loader.
type Decoder func(typ string, data []byte) (domain.Event, error)

// Identified is implemented by events whose event id must be deterministic
// (e.g. MessagePosted uses its message id), so that a retried command or a
// redelivered message appends nothing twice.
type Identified interface {
	EventID() uuid.UUID
}

// conflictRetries bounds how often Update reloads and decides again after a
// concurrent writer won the race for the same version. Each round of a race
// has a winner, so n writers racing on one stream all get through within n
// attempts; past this bound the caller gets a conflict (409).
const conflictRetries = 10

// conflictPause spreads racing writers out a little before they try again.
func conflictPause(ctx context.Context, attempt int) {
	t := time.NewTimer(time.Duration(rand.Int64N(int64(attempt)*int64(time.Millisecond)) + 1))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// readPage is how many events a load reads per round trip.
const readPage = 1000

// StreamName is the stream of the aggregate of kind with id: "<kind>-<uuid>".
func StreamName(kind string, id uuid.UUID) string { return kind + "-" + id.String() }

// Repository loads and saves one kind of aggregate. It enforces tenancy: a
// stream whose first event belongs to another organization than the one in
// the context's es.Metadata is not found.
type Repository[A Aggregate] struct {
	Store es.Store
	// Kind is the stream prefix, e.g. "assistant".
	Kind string
	// New returns an empty aggregate for id, ready to apply events.
	New    func(id uuid.UUID) A
	Decode Decoder
}

// Loaded is an aggregate with the stream state it was loaded at.
type Loaded[A Aggregate] struct {
	Aggregate A
	// Version is the stream's version (0: the stream has no events).
	Version uint64
	// Position is the global position of the stream's last event.
	Position es.Position
	// Events are the stored events the aggregate was built from.
	Events []es.Event
}

// Load replays the aggregate with id. A missing or foreign stream is
// domain.ErrNotFound.
func (r Repository[A]) Load(ctx context.Context, id uuid.UUID) (Loaded[A], error) {
	l, err := r.load(ctx, id)
	if err != nil {
		return l, err
	}
	if l.Version == 0 {
		return l, fmt.Errorf("%s %s: %w", r.Kind, id, domain.ErrNotFound)
	}
	return l, nil
}

func (r Repository[A]) load(ctx context.Context, id uuid.UUID) (Loaded[A], error) {
	l := Loaded[A]{Aggregate: r.New(id)}
	events, err := ReadStream(ctx, r.Store, StreamName(r.Kind, id))
	if err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return l, nil
		}
		return l, err
	}
	for _, e := range events {
		de, err := r.Decode(e.Type, e.Data)
		if err != nil {
			return l, fmt.Errorf("load %s: %w", e.Stream, err)
		}
		if de != nil {
			l.Aggregate.Apply(de)
		}
	}
	l.Events = events
	if n := len(events); n > 0 {
		l.Version = events[n-1].Version
		l.Position = events[n-1].Position
	}
	return l, nil
}

// Head loads the aggregate from its first event only: enough for decisions
// that depend on how it was created (whose it is, what it is linked to), at a
// cost that does not grow with the stream. Appends after such a decision use
// es.StreamExists and rely on event ids for idempotency. A missing or foreign
// stream is domain.ErrNotFound.
func (r Repository[A]) Head(ctx context.Context, id uuid.UUID) (A, error) {
	a := r.New(id)
	stream := StreamName(r.Kind, id)
	events, err := r.Store.ReadStream(ctx, stream, 1, 1)
	if errors.Is(err, es.ErrStreamNotFound) || (err == nil && len(events) == 0) {
		return a, fmt.Errorf("%s: %w", stream, domain.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("read %s: %w", stream, err)
	}
	if org := es.MetadataFrom(ctx).OrganizationID; org != "" && events[0].Metadata.OrganizationID != org {
		return a, fmt.Errorf("%s: %w", stream, domain.ErrNotFound)
	}
	de, err := r.Decode(events[0].Type, events[0].Data)
	if err != nil {
		return a, fmt.Errorf("load %s: %w", stream, err)
	}
	if de != nil {
		a.Apply(de)
	}
	return a, nil
}

// Create lets decide act on a new aggregate and appends what it recorded,
// expecting the stream not to exist (a taken id is domain.ErrConflict).
func (r Repository[A]) Create(ctx context.Context, id uuid.UUID, decide func(A) error) (es.AppendResult, error) {
	a := r.New(id)
	if err := decide(a); err != nil {
		return es.AppendResult{}, err
	}
	res, err := Append(ctx, r.Store, StreamName(r.Kind, id), es.NoStream, a.Changes())
	if errors.Is(err, es.ErrWrongExpectedVersion) {
		return res, fmt.Errorf("%s %s exists: %w", r.Kind, id, domain.ErrConflict)
	}
	return res, err
}

// Update loads the aggregate (domain.ErrNotFound if it does not exist), lets
// decide act on it and appends what it recorded with the loaded version. When
// another writer got there first it reloads and decides again, a few times.
// If decide records nothing, the result names the stream's current state.
func (r Repository[A]) Update(ctx context.Context, id uuid.UUID, decide func(A) error) (es.AppendResult, error) {
	return r.save(ctx, id, true, decide)
}

// Upsert is Update for aggregates that may not exist yet: decide gets an empty
// aggregate then, and the append expects no stream.
func (r Repository[A]) Upsert(ctx context.Context, id uuid.UUID, decide func(A) error) (es.AppendResult, error) {
	return r.save(ctx, id, false, decide)
}

func (r Repository[A]) save(ctx context.Context, id uuid.UUID, mustExist bool, decide func(A) error) (es.AppendResult, error) {
	for attempt := 1; ; attempt++ {
		var l Loaded[A]
		var err error
		if mustExist {
			l, err = r.Load(ctx, id)
		} else {
			l, err = r.load(ctx, id)
		}
		if err != nil {
			return es.AppendResult{}, err
		}
		if err := decide(l.Aggregate); err != nil {
			return es.AppendResult{}, err
		}
		changes := l.Aggregate.Changes()
		if len(changes) == 0 {
			return es.AppendResult{NextExpectedVersion: l.Version, Position: l.Position}, nil
		}
		res, err := Append(ctx, r.Store, StreamName(r.Kind, id), es.Exact(l.Version), changes)
		if errors.Is(err, es.ErrWrongExpectedVersion) {
			if attempt < conflictRetries {
				conflictPause(ctx, attempt)
				continue
			}
			return res, fmt.Errorf("%s %s changed concurrently: %w", r.Kind, id, domain.ErrConflict)
		}
		return res, err
	}
}

// ReadStream reads a whole stream, checking tenancy. A missing stream, or one
// whose first event names another organization than the context's metadata,
// is domain.ErrNotFound. A context without an organization (a system worker
// acting on an event it was handed) reads any stream.
func ReadStream(ctx context.Context, store es.Store, stream string) ([]es.Event, error) {
	var all []es.Event
	from := uint64(1)
	for {
		page, err := store.ReadStream(ctx, stream, from, readPage)
		if errors.Is(err, es.ErrStreamNotFound) {
			if len(all) == 0 {
				return nil, fmt.Errorf("%s: %w", stream, domain.ErrNotFound)
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		all = append(all, page...)
		if len(page) < readPage {
			break
		}
		from = page[len(page)-1].Version + 1
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%s: %w", stream, domain.ErrNotFound)
	}
	if org := es.MetadataFrom(ctx).OrganizationID; org != "" && all[0].Metadata.OrganizationID != org {
		return nil, fmt.Errorf("%s: %w", stream, domain.ErrNotFound)
	}
	return all, nil
}

// Append stores events in stream with the context's metadata. Events that
// implement domain.Personal get Subject and Personal set, so the
// crypto-shredding store encrypts their personal fields; events that
// implement Identified keep their own event id.
func Append(ctx context.Context, store es.Store, stream string, expected es.ExpectedVersion, events []domain.Event) (es.AppendResult, error) {
	base := es.MetadataFrom(ctx)
	out := make([]es.NewEvent, 0, len(events))
	for _, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			return es.AppendResult{}, fmt.Errorf("encode %s: %w", e.EventType(), err)
		}
		md := base
		md.Subject, md.Personal = "", nil
		if p, ok := e.(domain.Personal); ok {
			if subject, fields := p.PersonalData(); subject != "" && len(fields) > 0 {
				md.Subject, md.Personal = subject, fields
			}
		}
		id := uuid.New()
		if i, ok := e.(Identified); ok && i.EventID() != uuid.Nil {
			id = i.EventID()
		}
		out = append(out, es.NewEvent{ID: id, Type: e.EventType(), SchemaVersion: 1, Data: data, Metadata: md})
	}
	res, err := store.Append(ctx, stream, expected, out...)
	if err != nil {
		return res, fmt.Errorf("append to %s: %w", stream, err)
	}
	return res, nil
}

// Clock returns now() in UTC, or time.Now when now is nil. Handlers carry an
// optional Now so tests can fix time.
func Clock(now func() time.Time) time.Time {
	if now == nil {
		return time.Now().UTC()
	}
	return now().UTC()
}
