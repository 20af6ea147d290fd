// Package esdb is the EventStoreDB adapter of the event log port (es.Store),
// for operators who already run EventStoreDB or want its clustering. It is
// chosen with COMPANIN_EVENTSTORE=esdb and COMPANIN_ESDB_URL; PostgreSQL stays
// the default.
//
// How the port maps onto EventStoreDB:
//   - Versions: es versions start at 1, EventStoreDB revisions at 0; version v
//     is revision v-1 both ways. Expected versions map one to one (any,
//     no-stream, stream-exists, exact).
//   - Positions: the $all position (commit, prepare) as 32 lower-case hex
//     digits, so that string order is log order. GlobalPosition is the
//     prepare position: rising in log order, not contiguous. Servers before
//     22.6 send no position with events read from a stream: ReadStream then
//     returns events without one (ReadAll's always have one), and an append
//     takes the position the server reports for it. Use 22.6 or later.
//   - Metadata: es.Metadata's JSON fields, plus schema_version and append_id,
//     are the event's user metadata (see envelope).
//   - Idempotency: EventStoreDB acknowledges a retried append (same event ids
//     at the same place of the same stream) without writing. Append reads the
//     events back after every append, which tells a retry from a fresh write
//     (by append_id) and a retry with other content (compared like
//     es.Event.SameContent) from a true retry: the latter fails with
//     es.ErrDuplicateEventID. When EventStoreDB rejects a retry for its
//     expected version (the stream moved on since the first try), Append looks
//     for the batch among the stream's last retryWindow events and answers as
//     for any other retry. Limits, EventStoreDB's own: an event id is only
//     known within its stream (the same id appended to another stream is
//     stored again), and with es.Any the server recognises a retry from its
//     cache of recent event ids, so a late retry with es.Any may be stored
//     twice; retry with the expected version of the first try for a reliable
//     answer. With es.Any, a batch whose first event is new is written whole,
//     even if a later event of it is stored already.
//   - ReadAll skips EventStoreDB's system events ($-prefixed types and
//     streams) and filters by type, stream and organization in the client: the
//     v4 client's ReadAll has no server-side filter (only subscriptions do,
//     and a filtered catch-up subscription cannot tell where the log ends on
//     every server version).
//   - WaitForEvents is a $all subscription started at the given position,
//     filtered on the server to non-system events (or to the namespace).
package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

const (
	// pageSize is how many events one read of $all or a stream asks for.
	pageSize = 512
	// retryWindow is how far back from a stream's end Append looks for a
	// retried batch that EventStoreDB rejected for its expected version.
	retryWindow = 4096
)

// Store is an es.Store on EventStoreDB. It is safe for concurrent use.
type Store struct {
	client *esdb.Client
	// prefix is prepended to every stream name (see WithNamespace).
	prefix string

	// Close ends the calls in flight before it closes the client: the v4
	// client panics when a call fails on a closed client.
	mu       sync.RWMutex
	closed   bool
	inFlight sync.WaitGroup
	waits    context.Context // ends at Close: WaitForEvents calls
	all      context.Context // ends closeGrace after Close: every call
	endWaits context.CancelFunc
	endAll   context.CancelFunc
}

// closeGrace is how long Close lets appends and reads in flight finish
// before it cancels them.
const closeGrace = 10 * time.Second

var _ es.Store = (*Store)(nil)

// Option tunes a Store.
type Option func(*Store)

// WithNamespace keeps this store's streams apart from everything else on the
// server: they are stored as "<ns>:<stream>", and reads see only them. It lets
// several installations, or test runs, share one EventStoreDB.
func WithNamespace(ns string) Option {
	return func(s *Store) {
		if ns != "" {
			s.prefix = ns + ":"
		}
	}
}

// New connects to the EventStoreDB that url names, e.g.
// esdb://127.0.0.1:2113?tls=false, and checks that $all can be read, so that
// a wrong URL or missing rights fail at start rather than at the first request.
func New(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		return nil, fmt.Errorf("esdb: parse url: %w", err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("esdb: client: %w", err)
	}
	s := &Store{client: c}
	s.all, s.endAll = context.WithCancel(context.Background())
	s.waits, s.endWaits = context.WithCancel(s.all)
	for _, o := range opts {
		o(s)
	}
	rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err == nil {
		_, err = rs.Recv()
		rs.Close()
		if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	if err != nil {
		_ = c.Close()
		return nil, mapError("connect", err)
	}
	return s, nil
}

// errClosed is returned by calls after Close.
var errClosed = errors.New("esdb: store closed")

// Close ends the calls in flight and releases the connection: WaitForEvents
// calls end at once (with context.Canceled), appends and reads get
// closeGrace to finish. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.endWaits()
	finished := make(chan struct{})
	go func() { s.inFlight.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(closeGrace):
		s.endAll()
		<-finished
	}
	s.endAll()
	return s.client.Close()
}

// begin registers a call; its context also ends when Close ends calls of its
// kind (within, for WaitForEvents). The caller must call done.
func (s *Store) begin(ctx context.Context, within context.Context) (context.Context, func(), error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, nil, errClosed
	}
	s.inFlight.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(within, cancel)
	return ctx, func() {
		unhook()
		cancel()
		s.inFlight.Done()
	}, nil
}

// Append implements es.Store. See the package comment for idempotency.
func (s *Store) Append(ctx context.Context, stream string, expected es.ExpectedVersion, events ...es.NewEvent) (es.AppendResult, error) {
	ctx, done, err := s.begin(ctx, s.all)
	if err != nil {
		return es.AppendResult{}, err
	}
	defer done()
	if err := validate(stream, events); err != nil {
		return es.AppendResult{}, err
	}
	if len(events) == 0 {
		return s.appendNothing(ctx, stream, expected)
	}
	appendID := uuid.NewString()
	data := make([]esdb.EventData, len(events))
	for i, e := range events {
		d, err := toEventData(e, appendID)
		if err != nil {
			return es.AppendResult{}, err
		}
		data[i] = d
	}
	res, err := s.client.AppendToStream(ctx, s.prefix+stream, esdb.AppendToStreamOptions{ExpectedRevision: expectedRevision(expected)}, data...)
	if err != nil {
		err = mapError("append to "+stream, err)
		if errors.Is(err, es.ErrWrongExpectedVersion) {
			return s.retried(ctx, stream, events, err)
		}
		return es.AppendResult{}, err
	}
	// The result's revision is that of the last event of this batch, written
	// now or by the call this one retries. Read the batch back: for the exact
	// position of its last event in $all, and to check a retry's content.
	last := res.NextExpectedVersion
	if last+1 < uint64(len(events)) {
		return es.AppendResult{}, fmt.Errorf("esdb: append to %s: server reports revision %d for %d events", stream, last, len(events))
	}
	stored, err := s.readStream(ctx, stream, last+1-uint64(len(events)), len(events))
	if err != nil {
		return es.AppendResult{}, err
	}
	result, err := checkStored(stream, events, stored, appendID)
	if err == nil && result.Position == es.Start {
		// A server before 22.6 gives stream reads no $all position: take the
		// append's, which is its last event's.
		result.Position = encodePosition(esdb.Position{Commit: res.CommitPosition, Prepare: res.PreparePosition})
	}
	return result, err
}

// validate rejects what no adapter stores, and names of EventStoreDB's
// system streams, before anything is sent.
func validate(stream string, events []es.NewEvent) error {
	if strings.HasPrefix(stream, "$") {
		return fmt.Errorf("%w: stream name %q is reserved for EventStoreDB", es.ErrInvalidEvent, stream)
	}
	return es.ValidateAppend(stream, events)
}

// retried answers an append that EventStoreDB rejected for its expected
// version: if the batch is already in the stream's last retryWindow events,
// the append is a retry (or reuses ids for other content); otherwise the
// rejection stands.
func (s *Store) retried(ctx context.Context, stream string, events []es.NewEvent, rejection error) (es.AppendResult, error) {
	wanted := make(map[uuid.UUID]bool, len(events))
	for _, e := range events {
		wanted[e.ID] = true
	}
	var found []recorded // in stream order
	rs, err := s.client.ReadStream(ctx, s.prefix+stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, retryWindow)
	if err != nil {
		return es.AppendResult{}, rejection
	}
	defer rs.Close()
	for {
		ev, err := rs.Recv()
		if err != nil {
			// The end of the window, or a failing read: the rejection stands.
			break
		}
		if r := ev.OriginalEvent(); wanted[r.EventID] {
			e, id := s.toEvent(r)
			found = append([]recorded{{event: e, appendID: id}}, found...)
			if len(found) == len(events) {
				break
			}
		}
	}
	if len(found) == 0 {
		return es.AppendResult{}, rejection
	}
	if len(found) != len(events) {
		return es.AppendResult{}, fmt.Errorf("append to %s: batch partly stored already: %w", stream, es.ErrDuplicateEventID)
	}
	for i := 1; i < len(found); i++ {
		if found[i].event.Version != found[i-1].event.Version+1 {
			return es.AppendResult{}, fmt.Errorf("append to %s: batch stored apart already: %w", stream, es.ErrDuplicateEventID)
		}
	}
	// No append id can match: whatever is stored was stored by an earlier call.
	return checkStored(stream, events, found, "")
}

// checkStored compares the events an append asked for with those found at
// the revisions the server reported, in order.
func checkStored(stream string, events []es.NewEvent, stored []recorded, appendID string) (es.AppendResult, error) {
	if len(stored) != len(events) {
		return es.AppendResult{}, fmt.Errorf("esdb: append to %s: read back %d of %d events", stream, len(stored), len(events))
	}
	replayed := false
	for i, e := range events {
		got := stored[i]
		if got.event.ID != e.ID || !got.event.SameContent(e) {
			return es.AppendResult{}, fmt.Errorf("append to %s: event %s: %w", stream, e.ID, es.ErrDuplicateEventID)
		}
		if appendID == "" || got.appendID != appendID {
			replayed = true
		}
	}
	lastEvent := stored[len(stored)-1].event
	return es.AppendResult{NextExpectedVersion: lastEvent.Version, Position: lastEvent.Position, Replayed: replayed}, nil
}

// appendNothing answers an empty append like the other adapters: it checks
// the expectation against the stream's current version and writes nothing.
func (s *Store) appendNothing(ctx context.Context, stream string, expected es.ExpectedVersion) (es.AppendResult, error) {
	rs, err := s.client.ReadStream(ctx, s.prefix+stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return es.AppendResult{}, mapError("read "+stream, err)
	}
	defer rs.Close()
	var current uint64
	var pos es.Position
	ev, err := rs.Recv()
	switch {
	case err == nil:
		e, _ := s.toEvent(ev.OriginalEvent())
		current, pos = e.Version, e.Position
	case errors.Is(err, io.EOF):
	default:
		if mapped := mapError("read "+stream, err); !errors.Is(mapped, es.ErrStreamNotFound) {
			return es.AppendResult{}, mapped
		}
	}
	if !expected.Accepts(current) {
		return es.AppendResult{}, fmt.Errorf("append to %s: expected %s, stream at %d: %w", stream, expected, current, es.ErrWrongExpectedVersion)
	}
	return es.AppendResult{NextExpectedVersion: current, Position: pos}, nil
}

// recorded is an event read back with the append id it was written with.
type recorded struct {
	event    es.Event
	appendID string
}

// toEvent translates a recorded event of this store's namespace.
func (s *Store) toEvent(r *esdb.RecordedEvent) (es.Event, string) {
	e, id := toEvent(r)
	e.Stream = strings.TrimPrefix(e.Stream, s.prefix)
	return e, id
}

// ours tells whether an event of $all belongs to this store's log.
func (s *Store) ours(r *esdb.RecordedEvent) bool {
	return !isSystem(r) && strings.HasPrefix(r.StreamID, s.prefix)
}

// readStream reads up to limit events (all when limit <= 0) of stream from
// a revision on.
func (s *Store) readStream(ctx context.Context, stream string, fromRevision uint64, limit int) ([]recorded, error) {
	var out []recorded
	next := fromRevision
	for {
		count := pageSize
		if limit > 0 {
			count = min(pageSize, limit-len(out))
		}
		rs, err := s.client.ReadStream(ctx, s.prefix+stream, esdb.ReadStreamOptions{From: esdb.Revision(next)}, uint64(count))
		if err != nil {
			return nil, mapError("read "+stream, err)
		}
		n := 0
		for {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return nil, mapError("read "+stream, err)
			}
			n++
			e, id := s.toEvent(ev.OriginalEvent())
			out = append(out, recorded{event: e, appendID: id})
			next = ev.OriginalEvent().EventNumber + 1
		}
		rs.Close()
		if n < count || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
	}
}

// ReadStream implements es.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]es.Event, error) {
	ctx, done, err := s.begin(ctx, s.all)
	if err != nil {
		return nil, err
	}
	defer done()
	rs, err := s.readStream(ctx, stream, revisionOf(from), limit)
	if err != nil {
		return nil, err
	}
	out := make([]es.Event, len(rs))
	for i, r := range rs {
		out[i] = r.event
	}
	return out, nil
}

// ReadAll implements es.Store. It pages through $all from the position on,
// filtering in the client (see the package comment).
func (s *Store) ReadAll(ctx context.Context, after es.Position, limit int, f es.Filter) ([]es.Event, error) {
	ctx, done, err := s.begin(ctx, s.all)
	if err != nil {
		return nil, err
	}
	defer done()
	afterPos, hasAfter, err := decodePosition(after)
	if err != nil {
		return nil, err
	}
	var out []es.Event
	for {
		opts := esdb.ReadAllOptions{From: esdb.Start{}}
		if hasAfter {
			// Reading forwards from a position includes the event at it.
			opts.From = afterPos
		}
		rs, err := s.client.ReadAll(ctx, opts, pageSize)
		if err != nil {
			return nil, mapError("read $all", err)
		}
		n := 0
		for {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return nil, mapError("read $all", err)
			}
			n++
			r := ev.OriginalEvent()
			if hasAfter && !positionAfter(r.Position, afterPos) {
				continue
			}
			afterPos, hasAfter = r.Position, true
			if !s.ours(r) {
				continue
			}
			e, _ := s.toEvent(r)
			if !f.Matches(e) {
				continue
			}
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				rs.Close()
				return out, nil
			}
		}
		rs.Close()
		if n < pageSize {
			return out, nil
		}
	}
}

// WaitForEvents implements es.Store with a $all subscription that starts
// after the position (subscriptions exclude their start), filtered on the
// server: it returns at the first event of this store after the position.
func (s *Store) WaitForEvents(ctx context.Context, after es.Position) error {
	ctx, done, err := s.begin(ctx, s.waits)
	if err != nil {
		return err
	}
	defer done()
	pos, ok, err := decodePosition(after)
	if err != nil {
		return err
	}
	opts := esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: esdb.ExcludeSystemEventsFilter()}
	if s.prefix != "" {
		opts.Filter = &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{s.prefix}}
	}
	if ok {
		opts.From = pos
	}
	sub, err := s.client.SubscribeToAll(ctx, opts)
	if err != nil {
		if cerr := contextEnded(ctx); cerr != nil {
			return cerr
		}
		return mapError("subscribe to $all", err)
	}
	defer sub.Close()
	for {
		ev := sub.Recv()
		switch {
		case ev.EventAppeared != nil:
			r := ev.EventAppeared.OriginalEvent()
			if r != nil && (!ok || positionAfter(r.Position, pos)) && s.ours(r) {
				return nil
			}
		case ev.SubscriptionDropped != nil:
			if cerr := contextEnded(ctx); cerr != nil {
				return cerr
			}
			return mapError("subscription to $all dropped", ev.SubscriptionDropped.Error)
		}
	}
}

// contextEnded returns ctx's error once its deadline has passed, even in the
// instant before ctx itself says so: gRPC's own timer may end a call first,
// and callers must see context.DeadlineExceeded rather than a dropped call.
func contextEnded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}
