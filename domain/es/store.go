package es

import (
	"context"
	"fmt"
	"slices"
)

// ExpectedVersion states what the writer believes about a stream, with
// EventStoreDB's semantics.
type ExpectedVersion struct {
	kind    expectKind
	version uint64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectStreamExists
	expectExact
)

var (
	// Any appends whatever the stream's state.
	Any = ExpectedVersion{kind: expectAny}
	// NoStream appends only if the stream has no events yet.
	NoStream = ExpectedVersion{kind: expectNoStream}
	// StreamExists appends only if the stream has at least one event.
	StreamExists = ExpectedVersion{kind: expectStreamExists}
)

// Exact appends only if the stream's last event has version v. Exact(0) is NoStream.
func Exact(v uint64) ExpectedVersion {
	if v == 0 {
		return NoStream
	}
	return ExpectedVersion{kind: expectExact, version: v}
}

// Accepts tells whether a stream whose current version is current (0: no
// events) satisfies the expectation.
func (x ExpectedVersion) Accepts(current uint64) bool {
	switch x.kind {
	case expectNoStream:
		return current == 0
	case expectStreamExists:
		return current > 0
	case expectExact:
		return current == x.version
	default:
		return true
	}
}

// IsAny, IsNoStream, IsStreamExists and Exact let adapters translate the
// expectation into their own terms.
func (x ExpectedVersion) IsAny() bool          { return x.kind == expectAny }
func (x ExpectedVersion) IsNoStream() bool     { return x.kind == expectNoStream }
func (x ExpectedVersion) IsStreamExists() bool { return x.kind == expectStreamExists }

// ExactVersion returns the exact version expected, and whether one is.
func (x ExpectedVersion) ExactVersion() (uint64, bool) {
	return x.version, x.kind == expectExact
}

func (x ExpectedVersion) String() string {
	switch x.kind {
	case expectNoStream:
		return "no-stream"
	case expectStreamExists:
		return "stream-exists"
	case expectExact:
		return fmt.Sprintf("%d", x.version)
	default:
		return "any"
	}
}

// AppendResult tells where an append left the stream.
type AppendResult struct {
	// NextExpectedVersion is the stream's version after the append: the
	// version of its last event.
	NextExpectedVersion uint64
	// Position is the global position of the last appended event.
	Position Position
	// Replayed is true when every event was already stored (an idempotent retry).
	Replayed bool
}

// Filter narrows a read of the global log. The zero value reads everything.
type Filter struct {
	// Types keeps only events of these types.
	Types []string
	// Streams keeps only events of these streams.
	Streams []string
	// OrganizationID keeps only events whose metadata names this organization.
	OrganizationID string
}

// Store is the event log port. Every adapter (PostgreSQL, EventStoreDB,
// in-memory) passes the same contract suite, adapters/eventstore/contract.
type Store interface {
	// Append writes events to stream atomically: all or none. It fails with
	// ErrWrongExpectedVersion when the stream does not match expected, and
	// with ErrDuplicateEventID when an event id is stored with other content.
	// An append whose events are all already stored, as they are, returns the
	// first result with Replayed set and stores nothing.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...NewEvent) (AppendResult, error)
	// ReadStream returns up to limit events of stream with version >= from, in order.
	ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]Event, error)
	// ReadAll returns up to limit events of the global log after the given
	// position, in global order. Readers that page through it from Start see
	// every committed event exactly once, never skipping one that commits late.
	// An appended event may reach ReadAll a moment after Append returns (the
	// PostgreSQL adapter shows it once every older transaction on the server
	// has ended), never out of order: wait with WaitForEvents, do not assume.
	ReadAll(ctx context.Context, after Position, limit int, filter Filter) ([]Event, error)
	// WaitForEvents blocks until the global log may hold events after the given
	// position, or ctx ends. It may return early; callers read and wait again.
	WaitForEvents(ctx context.Context, after Position) error
}

// Matches tells whether e passes the filter.
func (f Filter) Matches(e Event) bool {
	if len(f.Types) > 0 && !slices.Contains(f.Types, e.Type) {
		return false
	}
	if len(f.Streams) > 0 && !slices.Contains(f.Streams, e.Stream) {
		return false
	}
	if f.OrganizationID != "" && e.Metadata.OrganizationID != f.OrganizationID {
		return false
	}
	return true
}

// FilteredWaiter is what a store implements when it can wait for the events
// of one filter alone, above all of one organization, without its caller
// reading everybody else's events (the PostgreSQL and in-memory stores).
// Use it through WaitFor.
type FilteredWaiter interface {
	// WaitForMatching blocks until the log may hold events after the given
	// position that pass f, or ctx ends. It may return early.
	WaitForMatching(ctx context.Context, after Position, f Filter) error
}

// waitScanPage bounds one read of WaitFor's fallback.
const waitScanPage = 500

// WaitFor blocks until the log may hold events after the given position that
// pass f, or ctx ends; callers read with the same filter and wait again. A
// store without FilteredWaiter is waited on with WaitForEvents and read past
// the events that do not match (what EventStoreDB's adapter filters in the
// client anyway), so that a waiter does not wake for ever on others' events.
func WaitFor(ctx context.Context, s Store, after Position, f Filter) error {
	if fw, ok := s.(FilteredWaiter); ok {
		return fw.WaitForMatching(ctx, after, f)
	}
	scan := Filter{Types: f.Types, Streams: f.Streams}
	for {
		if err := s.WaitForEvents(ctx, after); err != nil {
			return err
		}
		events, err := s.ReadAll(ctx, after, waitScanPage, scan)
		if err != nil {
			return err
		}
		for _, e := range events {
			if f.Matches(e) {
				return nil
			}
			after = e.Position
		}
		if len(events) == 0 {
			// Woken early with nothing readable: let the caller look again.
			return nil
		}
	}
}
