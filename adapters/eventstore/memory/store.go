// Package memory is an in-memory event store for domain unit tests. It keeps
// the same contract as the durable adapters but nothing survives the process.
package memory

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// Store is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	log     []es.Event
	streams map[string][]int // indexes into log
	byID    map[uuid.UUID]int
	changed chan struct{}
	now     func() time.Time
}

// New returns an empty store.
func New() *Store {
	return &Store{
		streams: map[string][]int{},
		byID:    map[uuid.UUID]int{},
		changed: make(chan struct{}),
		now:     func() time.Time { return time.Now().UTC() },
	}
}

func position(i int) es.Position { return es.Position(fmt.Sprintf("%016x", i+1)) }

func parsePosition(p es.Position) (int, error) {
	if p == es.Start {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(p), 16, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("memory store: bad position %q", p)
	}
	return int(n), nil
}

// Append implements es.Store.
func (s *Store) Append(ctx context.Context, stream string, expected es.ExpectedVersion, events ...es.NewEvent) (es.AppendResult, error) {
	if err := es.ValidateAppend(stream, events); err != nil {
		return es.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	idx := s.streams[stream]
	// Idempotency: a batch whose events are all stored, in this stream, as they are.
	stored := 0
	for _, e := range events {
		if i, ok := s.byID[e.ID]; ok {
			if s.log[i].Stream != stream || !s.log[i].SameContent(e) {
				return es.AppendResult{}, fmt.Errorf("append to %s: event %s: %w", stream, e.ID, es.ErrDuplicateEventID)
			}
			stored++
		}
	}
	if stored > 0 {
		if stored != len(events) {
			return es.AppendResult{}, fmt.Errorf("append to %s: batch partly stored already: %w", stream, es.ErrDuplicateEventID)
		}
		last := s.log[s.byID[events[len(events)-1].ID]]
		return es.AppendResult{NextExpectedVersion: last.Version, Position: last.Position, Replayed: true}, nil
	}

	current := uint64(len(idx))
	if !expected.Accepts(current) {
		return es.AppendResult{}, fmt.Errorf("append to %s: expected %s, stream at %d: %w", stream, expected, current, es.ErrWrongExpectedVersion)
	}
	if len(events) == 0 {
		var pos es.Position
		if current > 0 {
			pos = s.log[idx[len(idx)-1]].Position
		}
		return es.AppendResult{NextExpectedVersion: current, Position: pos}, nil
	}
	at := s.now()
	for _, e := range events {
		i := len(s.log)
		current++
		s.log = append(s.log, es.Event{
			ID: e.ID, Stream: stream, Version: current, Position: position(i), GlobalPosition: int64(i + 1),
			Type: e.Type, SchemaVersion: max(e.SchemaVersion, 1), Data: slices.Clone(e.Data), Metadata: e.Metadata, RecordedAt: at,
		})
		s.streams[stream] = append(s.streams[stream], i)
		s.byID[e.ID] = i
	}
	close(s.changed)
	s.changed = make(chan struct{})
	last := s.log[len(s.log)-1]
	return es.AppendResult{NextExpectedVersion: last.Version, Position: last.Position}, nil
}

// ReadStream implements es.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]es.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, ok := s.streams[stream]
	if !ok {
		return nil, fmt.Errorf("read %s: %w", stream, es.ErrStreamNotFound)
	}
	var out []es.Event
	for _, i := range idx {
		if e := s.log[i]; e.Version >= from {
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// ReadAll implements es.Store.
func (s *Store) ReadAll(ctx context.Context, after es.Position, limit int, f es.Filter) ([]es.Event, error) {
	start, err := parsePosition(after)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []es.Event
	for i := start; i < len(s.log); i++ {
		if e := s.log[i]; f.Matches(e) {
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// WaitForEvents implements es.Store.
func (s *Store) WaitForEvents(ctx context.Context, after es.Position) error {
	start, err := parsePosition(after)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if start < len(s.log) {
		s.mu.Unlock()
		return nil
	}
	ch := s.changed
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitForMatching implements es.FilteredWaiter.
func (s *Store) WaitForMatching(ctx context.Context, after es.Position, f es.Filter) error {
	start, err := parsePosition(after)
	if err != nil {
		return err
	}
	s.mu.Lock()
	for i := start; i < len(s.log); i++ {
		if f.Matches(s.log[i]) {
			s.mu.Unlock()
			return nil
		}
	}
	ch := s.changed
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var _ es.FilteredWaiter = (*Store)(nil)
