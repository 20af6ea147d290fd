package commands

import (
	"context"
	"errors"
	"time"

	"github.com/companin/companin/domain"
	"github.com/google/uuid"
)

// Create makes a new aggregate from a client's input In, under a new id:
// an assistant's persona, a widget configuration.
type Create[In any] struct {
	Input In
}

// Update changes the given (non-nil) fields of In on the aggregate ID.
type Update[In any] struct {
	ID    uuid.UUID
	Input In
}

// ByID is a decision on an existing aggregate that needs nothing but its id
// and the time: delete an assistant, remove or refresh a knowledge source.
type ByID struct {
	ID uuid.UUID
}

// CreateHandler handles a Create of one kind of aggregate (see New).
type CreateHandler[In any] struct {
	create func(ctx context.Context, in In) (Written, error)
}

// Handle parses the input and creates the aggregate with a new id.
func (h CreateHandler[In]) Handle(ctx context.Context, cmd Create[In]) (Written, error) {
	return h.create(ctx, cmd.Input)
}

// UpdateHandler handles an Update of one kind of aggregate (see New).
type UpdateHandler[In any] struct {
	update func(ctx context.Context, id uuid.UUID, in In) (Written, error)
}

// Handle applies the change; one that changes nothing appends nothing.
func (h UpdateHandler[In]) Handle(ctx context.Context, cmd Update[In]) (Written, error) {
	return h.update(ctx, cmd.ID, cmd.Input)
}

// ByIDHandler handles one ByID decision on one kind of aggregate (see New).
type ByIDHandler struct {
	decide func(ctx context.Context, id uuid.UUID) (Written, error)
}

// Handle loads the aggregate, lets it decide and appends what it recorded.
func (h ByIDHandler) Handle(ctx context.Context, cmd ByID) (Written, error) {
	return h.decide(ctx, cmd.ID)
}

// creating builds the CreateHandler that parses In into settings S and
// lets create record the new aggregate.
func creating[A Aggregate, In, S any](repo Repository[A], parse func(In) (S, error), create func(A, S, time.Time) error, now func() time.Time) CreateHandler[In] {
	return CreateHandler[In]{create: func(ctx context.Context, in In) (Written, error) {
		s, err := parse(in)
		if err != nil {
			return Written{}, err
		}
		id := uuid.New()
		res, err := repo.Create(ctx, id, func(a A) error { return create(a, s, Clock(now)) })
		if err != nil {
			return Written{}, err
		}
		return Written{ID: id, Position: res.Position}, nil
	}}
}

// updating builds the UpdateHandler that lets update apply In to the
// aggregate; a missing or foreign one is notFound.
func updating[A Aggregate, In any](repo Repository[A], notFound error, update func(A, In, time.Time) error, now func() time.Time) UpdateHandler[In] {
	return UpdateHandler[In]{update: func(ctx context.Context, id uuid.UUID, in In) (Written, error) {
		return change(ctx, repo, id, notFound, func(a A) error { return update(a, in, Clock(now)) })
	}}
}

// deciding builds the ByIDHandler that lets decide act on the aggregate; a
// missing or foreign one is notFound.
func deciding[A Aggregate](repo Repository[A], notFound error, decide func(A, time.Time) error, now func() time.Time) ByIDHandler {
	return ByIDHandler{decide: func(ctx context.Context, id uuid.UUID) (Written, error) {
		return change(ctx, repo, id, notFound, func(a A) error { return decide(a, Clock(now)) })
	}}
}

// change is Repository.Update with the kind's own not-found error.
func change[A Aggregate](ctx context.Context, repo Repository[A], id uuid.UUID, notFound error, decide func(A) error) (Written, error) {
	res, err := repo.Update(ctx, id, decide)
	if errors.Is(err, domain.ErrNotFound) && !errors.Is(err, notFound) {
		return Written{}, notFound
	}
	if err != nil {
		return Written{}, err
	}
	return Written{ID: id, Position: res.Position}, nil
}
