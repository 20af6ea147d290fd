package shred

import (
	"context"

	"github.com/companin/companin/domain/es"
)

// header is the optional "where does the log end" of the inner store
// (messaging.HeadReader); the decorator passes it through so that wrapping a
// store does not hide it.
type header interface {
	Head(ctx context.Context) (es.Position, error)
}

// Head returns the inner store's head, or Start when it cannot tell.
func (s *Store) Head(ctx context.Context) (es.Position, error) {
	if h, ok := s.inner.(header); ok {
		return h.Head(ctx)
	}
	return es.Start, nil
}
