package contract

import (
	"context"
	"fmt"
	"testing"

	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// Follow reads the global log the way a consumer does: page by page after its
// checkpoint (the position of the last event it saw), waiting for more when
// it is at the end, until enough(number of events seen) or ctx ends. It
// returns what it saw, in order. Adapter tests run several at once against
// racing writers.
func Follow(ctx context.Context, s es.Store, pageSize int, enough func(seen int) bool) ([]es.Event, error) {
	var (
		seen       []es.Event
		checkpoint = es.Start
	)
	for !enough(len(seen)) {
		page, err := s.ReadAll(ctx, checkpoint, pageSize, es.Filter{})
		if err != nil {
			return seen, fmt.Errorf("read after %q: %w", checkpoint, err)
		}
		for _, e := range page {
			if !e.Position.After(checkpoint) {
				return seen, fmt.Errorf("event %s at %q does not lie after the checkpoint %q", e.ID, e.Position, checkpoint)
			}
			checkpoint = e.Position
		}
		seen = append(seen, page...)
		if len(page) == 0 && !enough(len(seen)) {
			if err := s.WaitForEvents(ctx, checkpoint); err != nil {
				return seen, fmt.Errorf("wait after %d events: %w", len(seen), err)
			}
		}
	}
	return seen, nil
}

// CheckReaders fails t unless every reader saw exactly the committed events,
// each once, all readers in one and the same order, and each stream's
// versions rising by one from 1 (guarantees 5 and 6).
func CheckReaders(t testing.TB, committed map[uuid.UUID]bool, readers ...[]es.Event) {
	t.Helper()
	for r, seen := range readers {
		once := make(map[uuid.UUID]bool, len(seen))
		versions := map[string]uint64{}
		for i, e := range seen {
			if !committed[e.ID] {
				t.Errorf("reader %d saw event %s (%s v%d) that was never committed", r, e.ID, e.Stream, e.Version)
			}
			if once[e.ID] {
				t.Errorf("reader %d saw event %s twice", r, e.ID)
			}
			once[e.ID] = true
			if e.Version != versions[e.Stream]+1 {
				t.Errorf("reader %d: %s v%d follows v%d", r, e.Stream, e.Version, versions[e.Stream])
			}
			versions[e.Stream] = e.Version
			if i > 0 && !e.Position.After(seen[i-1].Position) {
				t.Errorf("reader %d: position %q of event %d does not lie after %q", r, e.Position, i, seen[i-1].Position)
			}
		}
		for id := range committed {
			if !once[id] {
				t.Errorf("reader %d never saw committed event %s", r, id)
			}
		}
		if r > 0 && len(seen) == len(readers[0]) {
			for i := range seen {
				if seen[i].ID != readers[0][i].ID {
					t.Errorf("reader %d and reader 0 disagree on the order at event %d", r, i)
					break
				}
			}
		}
		if t.Failed() {
			return
		}
	}
}
