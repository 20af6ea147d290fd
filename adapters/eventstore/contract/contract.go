// Package contract is the test suite every es.Store adapter passes: the
// guarantees of DESIGN.md ("The event store: guarantees that tests must
// prove") checked through the port alone, so that the in-memory, PostgreSQL
// and EventStoreDB adapters are interchangeable.
//
// Guarantee 4 (acknowledged means durable) and the out-of-order commits of
// guarantee 5 need the adapter's insides (a writer paused before its commit,
// a killed process); the adapters' own tests prove them with Follow and
// CheckReaders from this package.
package contract

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// Run runs the suite. newStore returns an empty store for one subtest and
// arranges its cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) es.Store) {
	tests := []struct {
		name string
		test func(t *testing.T, s es.Store)
	}{
		{"AppendAndReadStreamRoundTrip", testRoundTrip},
		{"ReadStreamFromAndLimit", testReadStreamFromAndLimit},
		{"ReadStreamOfUnknownStream", testReadUnknownStream},
		{"BatchIsAtomic", testBatchIsAtomic},
		{"ExpectedVersion", testExpectedVersion},
		{"RacingWritersOnOneExpectedVersion", testRacingWriters},
		{"RacingWritersWithAnyStayContiguous", testRacingAny},
		{"IdempotentRetry", testIdempotentRetry},
		{"SameIDOtherContentConflicts", testSameIDOtherContent},
		{"ReadAllPagesInOrder", testReadAllPaging},
		{"ReadAllFilters", testReadAllFilters},
		{"WaitForEventsWakesOnAppend", testWaitWakes},
		{"WaitForEventsReturnsAtOnceWhenBehind", testWaitBehind},
		{"WaitForOneOrganizationWakesOnItsEvents", testWaitForOrganization},
		{"ConcurrentWritersAndFollowers", testConcurrentFollowers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, newStore(t))
		})
	}
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// stream returns a fresh stream name of the shape the domain uses.
func stream(kind string) string { return kind + "-" + uuid.NewString() }

func event(typ string, data any) es.NewEvent {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return es.NewEvent{ID: uuid.New(), Type: typ, SchemaVersion: 1, Data: b}
}

func events(n int, typ string) []es.NewEvent {
	out := make([]es.NewEvent, n)
	for i := range out {
		out[i] = event(typ, map[string]any{"n": i})
	}
	return out
}

func mustAppend(t *testing.T, s es.Store, stream string, x es.ExpectedVersion, evs ...es.NewEvent) es.AppendResult {
	t.Helper()
	res, err := s.Append(ctxOf(t), stream, x, evs...)
	if err != nil {
		t.Fatalf("append %d events to %s (expected %s): %v", len(evs), stream, x, err)
	}
	return res
}

func readStream(t *testing.T, s es.Store, stream string) []es.Event {
	t.Helper()
	evs, err := s.ReadStream(ctxOf(t), stream, 1, 0)
	if err != nil && !errors.Is(err, es.ErrStreamNotFound) {
		t.Fatalf("read %s: %v", stream, err)
	}
	return evs
}

// caughtUp waits until a reader of the global log sees the event at pos.
// Adapters may show an appended event to readers of the global log a little
// later than to readers of its stream (PostgreSQL waits for every older
// transaction of the server to end), never out of order.
func caughtUp(t *testing.T, s es.Store, pos es.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctxOf(t), 30*time.Second)
	defer cancel()
	after := es.Start
	for {
		page, err := s.ReadAll(ctx, after, 100, es.Filter{})
		if err != nil {
			t.Fatalf("catching up with %q: %v", pos, err)
		}
		for _, e := range page {
			if e.Position == pos {
				return
			}
			if e.Position.After(pos) {
				t.Fatalf("the global log skipped %q: it went on at %q", pos, e.Position)
			}
			after = e.Position
		}
		if len(page) == 0 {
			if err := s.WaitForEvents(ctx, after); err != nil {
				t.Fatalf("the global log never showed %q: %v", pos, err)
			}
		}
	}
}

func readAll(t *testing.T, s es.Store, f es.Filter, pageSize int) []es.Event {
	t.Helper()
	var out []es.Event
	pos := es.Start
	for {
		page, err := s.ReadAll(ctxOf(t), pos, pageSize, f)
		if err != nil {
			t.Fatalf("read all after %q: %v", pos, err)
		}
		if pageSize > 0 && len(page) > pageSize {
			t.Fatalf("read all returned %d events for a limit of %d", len(page), pageSize)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		pos = page[len(page)-1].Position
		if pageSize <= 0 {
			return out
		}
	}
}

func ids(evs []es.Event) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func newIDs(evs []es.NewEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("stored data is not JSON: %s", a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("sent data is not JSON: %s", b)
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

func testRoundTrip(t *testing.T, s es.Store) {
	st := stream("conversation")
	md := es.Metadata{
		OrganizationID: uuid.NewString(), Actor: "api_key:abc", RequestID: "req-1",
		CorrelationID: "corr-1", CausationID: "cause-1", Subject: "subject-1",
		Personal: []string{"content"}, Extra: map[string]string{"k": "v"},
	}
	first := event("ConversationStarted", map[string]any{"title": "Grüße", "n": 1.5, "nested": map[string]any{"a": []int{1, 2}}})
	first.Metadata, first.SchemaVersion = md, 2
	second := es.NewEvent{ID: uuid.New(), Type: "ConversationClosed"} // no data, schema version defaults to 1
	before := time.Now().Add(-time.Minute)
	res := mustAppend(t, s, st, es.NoStream, first, second)
	if res.NextExpectedVersion != 2 || res.Replayed || res.Position == es.Start {
		t.Fatalf("append result %+v, want version 2, a position, not replayed", res)
	}
	got := readStream(t, s, st)
	if len(got) != 2 {
		t.Fatalf("read %d events, want 2", len(got))
	}
	e := got[0]
	if e.ID != first.ID || e.Stream != st || e.Version != 1 || e.Type != first.Type || e.SchemaVersion != 2 {
		t.Errorf("first event %+v does not match what was appended", e)
	}
	if !jsonEqual(t, e.Data, first.Data) {
		t.Errorf("data %s, want %s", e.Data, first.Data)
	}
	if !reflectEqualMetadata(e.Metadata, md) {
		t.Errorf("metadata %+v, want %+v", e.Metadata, md)
	}
	if e.RecordedAt.Before(before) || e.RecordedAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("recorded at %v, want about now", e.RecordedAt)
	}
	if e.Position == es.Start || e.GlobalPosition <= 0 {
		t.Errorf("first event has no position: %q, %d", e.Position, e.GlobalPosition)
	}
	if got[1].Version != 2 || got[1].SchemaVersion != 1 || len(got[1].Data) != 0 || got[1].Type != "ConversationClosed" {
		t.Errorf("second event %+v, want version 2, schema version 1, no data", got[1])
	}
	if !got[1].Position.After(e.Position) || got[1].GlobalPosition <= e.GlobalPosition {
		t.Errorf("second event's position %q/%d does not follow %q/%d", got[1].Position, got[1].GlobalPosition, e.Position, e.GlobalPosition)
	}
	if got[1].Position != res.Position {
		t.Errorf("append returned position %q, last event is at %q", res.Position, got[1].Position)
	}
	caughtUp(t, s, res.Position)
	all := readAll(t, s, es.Filter{}, 0)
	if !slices.Equal(ids(all), ids(got)) || all[1].Position != got[1].Position {
		t.Errorf("the global log differs from the stream: %v vs %v", ids(all), ids(got))
	}
}

func reflectEqualMetadata(a, b es.Metadata) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func testReadStreamFromAndLimit(t *testing.T, s es.Store) {
	st := stream("session")
	evs := events(5, "SessionTouched")
	mustAppend(t, s, st, es.NoStream, evs[:2]...)
	mustAppend(t, s, st, es.Exact(2), evs[2:]...)
	got, err := s.ReadStream(ctxOf(t), st, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Version != 2 || got[1].Version != 3 || got[0].ID != evs[1].ID {
		t.Fatalf("from 2 limit 2: got %v", versions(got))
	}
	got, err = s.ReadStream(ctxOf(t), st, 6, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("after the end: %v, %v; want no events, no error", versions(got), err)
	}
	if got := readStream(t, s, st); !slices.Equal(versions(got), []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("versions %v", versions(got))
	}
}

func versions(evs []es.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Version
	}
	return out
}

func testReadUnknownStream(t *testing.T, s es.Store) {
	_, err := s.ReadStream(ctxOf(t), stream("assistant"), 1, 10)
	if !errors.Is(err, es.ErrStreamNotFound) {
		t.Fatalf("got %v, want ErrStreamNotFound", err)
	}
}

func testBatchIsAtomic(t *testing.T, s es.Store) {
	ctx := ctxOf(t)
	other := stream("assistant")
	taken := event("AssistantCreated", map[string]any{"name": "a"})
	takenAt := mustAppend(t, s, other, es.NoStream, taken)

	cases := []struct {
		name  string
		batch func() []es.NewEvent
		want  error
	}{
		{"event without type", func() []es.NewEvent {
			b := events(3, "AssistantRenamed")
			b[1].Type = ""
			return b
		}, es.ErrInvalidEvent},
		{"event without id", func() []es.NewEvent {
			b := events(3, "AssistantRenamed")
			b[2].ID = uuid.Nil
			return b
		}, es.ErrInvalidEvent},
		{"data that is not JSON", func() []es.NewEvent {
			b := events(3, "AssistantRenamed")
			b[2].Data = json.RawMessage(`{"broken":`)
			return b
		}, es.ErrInvalidEvent},
		// Text no reader can store (PostgreSQL refuses it in text and jsonb):
		// refused at the append, so that no projection ever meets it.
		{"a NUL character in the data", func() []es.NewEvent {
			b := events(3, "AssistantRenamed")
			b[1].Data = json.RawMessage(`{"name":"a","traits":{"x":"a\u0000b"}}`)
			return b
		}, es.ErrInvalidText},
		{"a NUL character in personal data", func() []es.NewEvent {
			b := events(2, "ContextUpdated")
			b[1].Data = json.RawMessage(`{"traits":{"x":"pwn\u0000"}}`)
			b[1].Metadata = es.Metadata{Subject: "usercontext-1", Personal: []string{"traits"}}
			return b
		}, es.ErrInvalidText},
		{"invalid UTF-8 in the data", func() []es.NewEvent {
			b := events(3, "AssistantRenamed")
			b[2].Data = json.RawMessage("{\"name\":\"caf\xc3\"}")
			return b
		}, es.ErrInvalidText},
		{"a NUL character in the metadata", func() []es.NewEvent {
			b := events(2, "AssistantRenamed")
			b[0].Metadata.Extra = map[string]string{"source": "x\x00"}
			return b
		}, es.ErrInvalidText},
		{"one id twice", func() []es.NewEvent {
			b := events(3, "AssistantRenamed")
			b[2].ID = b[0].ID
			return b
		}, es.ErrInvalidEvent},
		{"an id stored in another stream", func() []es.NewEvent {
			b := events(3, "AssistantRenamed")
			b[2] = taken
			return b
		}, es.ErrDuplicateEventID},
	}
	for _, c := range cases {
		st := stream("assistant")
		batch := c.batch()
		if _, err := s.Append(ctx, st, es.Any, batch...); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		if got := readStream(t, s, st); len(got) != 0 {
			t.Errorf("%s: %d events of a failed batch were stored", c.name, len(got))
		}
	}
	if _, err := s.Append(ctx, "", es.Any, events(1, "X")...); !errors.Is(err, es.ErrInvalidEvent) {
		t.Errorf("empty stream name: got %v, want ErrInvalidEvent", err)
	}
	caughtUp(t, s, takenAt.Position)
	if all := readAll(t, s, es.Filter{}, 0); len(all) != 1 {
		t.Errorf("the log holds %d events, want only the first one", len(all))
	}
}

func testExpectedVersion(t *testing.T, s es.Store) {
	ctx := ctxOf(t)
	cases := []struct {
		name     string
		existing bool // a stream at version 2, else a new one
		expected es.ExpectedVersion
		ok       bool
	}{
		{"any on a new stream", false, es.Any, true},
		{"any on an existing stream", true, es.Any, true},
		{"no stream on a new stream", false, es.NoStream, true},
		{"no stream on an existing stream", true, es.NoStream, false},
		{"exact 0 on a new stream", false, es.Exact(0), true},
		{"stream exists on a new stream", false, es.StreamExists, false},
		{"stream exists on an existing stream", true, es.StreamExists, true},
		{"exact current version", true, es.Exact(2), true},
		{"exact older version", true, es.Exact(1), false},
		{"exact newer version", true, es.Exact(3), false},
		{"exact version on a new stream", false, es.Exact(1), false},
	}
	for _, c := range cases {
		st := stream("organization")
		before := 0
		if c.existing {
			mustAppend(t, s, st, es.NoStream, events(2, "OrganizationRenamed")...)
			before = 2
		}
		res, err := s.Append(ctx, st, c.expected, events(1, "OrganizationRenamed")...)
		after := readStream(t, s, st)
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.ok && (res.NextExpectedVersion != uint64(before+1) || len(after) != before+1):
			t.Errorf("%s: next expected version %d, stream has %d events, want %d", c.name, res.NextExpectedVersion, len(after), before+1)
		case !c.ok && !errors.Is(err, es.ErrWrongExpectedVersion):
			t.Errorf("%s: got %v, want ErrWrongExpectedVersion", c.name, err)
		case !c.ok && len(after) != before:
			t.Errorf("%s: a rejected append stored events", c.name)
		}
		// An empty append checks the expectation and stores nothing.
		empty, err := s.Append(ctx, st, es.Exact(uint64(len(after))), nil...)
		if err != nil || empty.NextExpectedVersion != uint64(len(after)) {
			t.Errorf("%s: empty append at the current version: %+v, %v", c.name, empty, err)
		}
		if len(after) > 0 {
			if _, err := s.Append(ctx, st, es.NoStream); !errors.Is(err, es.ErrWrongExpectedVersion) {
				t.Errorf("%s: empty append expecting no stream: got %v, want ErrWrongExpectedVersion", c.name, err)
			}
		}
	}
}

func testRacingWriters(t *testing.T, s es.Store) {
	ctx := ctxOf(t)
	const writers = 50
	for _, start := range []uint64{0, 1} {
		st := stream("conversation")
		if start > 0 {
			mustAppend(t, s, st, es.NoStream, events(int(start), "MessagePosted")...)
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			won     []uuid.UUID
			results []es.AppendResult
			other   []error
		)
		ready := make(chan struct{})
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				batch := events(2, "MessagePosted")
				<-ready
				res, err := s.Append(ctx, st, es.Exact(start), batch...)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won = append(won, batch[0].ID, batch[1].ID)
					results = append(results, res)
				case !errors.Is(err, es.ErrWrongExpectedVersion):
					other = append(other, err)
				}
			}()
		}
		close(ready)
		wg.Wait()
		if len(other) > 0 {
			t.Fatalf("losers got other errors than ErrWrongExpectedVersion: %v", other[0])
		}
		if len(results) != 1 {
			t.Fatalf("from version %d: %d writers won, want exactly 1", start, len(results))
		}
		if results[0].NextExpectedVersion != start+2 {
			t.Errorf("winner's next expected version %d, want %d", results[0].NextExpectedVersion, start+2)
		}
		got := readStream(t, s, st)
		if !slices.Equal(versions(got), contiguous(start+2)) {
			t.Errorf("versions %v, want 1..%d", versions(got), start+2)
		}
		if !slices.Equal(ids(got[start:]), won) {
			t.Errorf("the stream holds %v, the winner wrote %v", ids(got[start:]), won)
		}
	}
}

func contiguous(n uint64) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

func testRacingAny(t *testing.T, s es.Store) {
	ctx := ctxOf(t)
	const writers, perBatch = 50, 3
	st := stream("usercontext")
	var wg sync.WaitGroup
	batches := make([][]es.NewEvent, writers)
	results := make([]es.AppendResult, writers)
	errs := make([]error, writers)
	for i := range writers {
		batches[i] = events(perBatch, "TraitSet")
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.Append(ctx, st, es.Any, batches[i]...)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := readStream(t, s, st)
	if !slices.Equal(versions(got), contiguous(writers*perBatch)) {
		t.Fatalf("versions %v are not 1..%d", versions(got), writers*perBatch)
	}
	at := map[uuid.UUID]uint64{}
	for _, e := range got {
		at[e.ID] = e.Version
	}
	for i, b := range batches {
		first := at[b[0].ID]
		for j, e := range b {
			if at[e.ID] != first+uint64(j) {
				t.Errorf("batch %d is not contiguous in the stream", i)
			}
		}
		if results[i].NextExpectedVersion != first+perBatch-1 {
			t.Errorf("batch %d: next expected version %d, its last event is v%d", i, results[i].NextExpectedVersion, first+perBatch-1)
		}
	}
}

func testIdempotentRetry(t *testing.T, s es.Store) {
	ctx := ctxOf(t)
	st := stream("knowledge")
	batch := events(3, "SourceAdded")
	first := mustAppend(t, s, st, es.NoStream, batch...)
	later := mustAppend(t, s, st, es.Exact(3), events(1, "SourceRemoved")...)

	for _, x := range []es.ExpectedVersion{es.NoStream, es.Exact(0), es.Any, es.Exact(3), es.StreamExists} {
		// Same ids, same content; the data may come back re-encoded.
		retry := slices.Clone(batch)
		retry[0].Data = json.RawMessage(" {\"n\" : 0} ")
		res, err := s.Append(ctx, st, x, retry...)
		if err != nil {
			t.Fatalf("retry with expected %s: %v", x, err)
		}
		if !res.Replayed || res.NextExpectedVersion != first.NextExpectedVersion || res.Position != first.Position {
			t.Errorf("retry with expected %s: %+v, want the first result %+v replayed", x, res, first)
		}
	}
	got := readStream(t, s, st)
	if len(got) != 4 || got[3].Version != later.NextExpectedVersion {
		t.Fatalf("the stream holds %d events, want 4: retries stored something", len(got))
	}
	caughtUp(t, s, later.Position)
	if all := readAll(t, s, es.Filter{}, 0); len(all) != 4 {
		t.Fatalf("the log holds %d events, want 4", len(all))
	}
	// A retry of the last event alone returns where that event was stored.
	res := mustAppend(t, s, st, es.Any, batch[1])
	if !res.Replayed || res.NextExpectedVersion != 2 || res.Position != got[1].Position {
		t.Errorf("retry of event 2 alone: %+v, want version 2 at %q replayed", res, got[1].Position)
	}
}

func testSameIDOtherContent(t *testing.T, s es.Store) {
	ctx := ctxOf(t)
	st := stream("widgetconfig")
	batch := events(2, "WidgetConfigured")
	first := mustAppend(t, s, st, es.NoStream, batch...)

	otherData := slices.Clone(batch)
	otherData[1].Data = json.RawMessage(`{"n": 2}`)
	otherType := slices.Clone(batch)
	otherType[0].Type = "WidgetReset"
	partly := []es.NewEvent{batch[1], event("WidgetConfigured", map[string]any{"n": 9})}
	for name, c := range map[string]struct {
		stream string
		batch  []es.NewEvent
	}{
		"other data":            {st, otherData},
		"other type":            {st, otherType},
		"other stream":          {stream("widgetconfig"), batch},
		"partly stored batch":   {st, partly},
		"stored id, new stream": {stream("widgetconfig"), partly},
	} {
		if _, err := s.Append(ctx, c.stream, es.Any, c.batch...); !errors.Is(err, es.ErrDuplicateEventID) {
			t.Errorf("%s: got %v, want ErrDuplicateEventID", name, err)
		}
	}
	caughtUp(t, s, first.Position)
	if all := readAll(t, s, es.Filter{}, 0); !slices.Equal(ids(all), newIDs(batch)) {
		t.Fatalf("the log holds %v, want only the first batch %v", ids(all), newIDs(batch))
	}
}

func testReadAllPaging(t *testing.T, s es.Store) {
	var (
		want []uuid.UUID
		last es.Position
	)
	streams := []string{stream("session"), stream("session"), stream("conversation")}
	for i := range 17 {
		st := streams[i%len(streams)]
		batch := events(1+i%3, "Something")
		last = mustAppend(t, s, st, es.Any, batch...).Position
		want = append(want, newIDs(batch)...)
	}
	caughtUp(t, s, last)
	for _, size := range []int{1, 3, 7, 1000} {
		got := readAll(t, s, es.Filter{}, size)
		if !slices.Equal(ids(got), want) {
			t.Fatalf("pages of %d: %d events, not the %d appended in order", size, len(got), len(want))
		}
		for i := 1; i < len(got); i++ {
			if !got[i].Position.After(got[i-1].Position) || got[i].GlobalPosition <= got[i-1].GlobalPosition {
				t.Fatalf("pages of %d: event %d at %q/%d does not follow %q/%d", size, i,
					got[i].Position, got[i].GlobalPosition, got[i-1].Position, got[i-1].GlobalPosition)
			}
		}
	}
	all := readAll(t, s, es.Filter{}, 0)
	page, err := s.ReadAll(ctxOf(t), all[len(all)-1].Position, 10, es.Filter{})
	if err != nil || len(page) != 0 {
		t.Fatalf("after the last event: %d events, %v", len(page), err)
	}
	page, err = s.ReadAll(ctxOf(t), all[4].Position, 2, es.Filter{})
	if err != nil || !slices.Equal(ids(page), want[5:7]) {
		t.Fatalf("after event 5: %v, %v; want %v", ids(page), err, want[5:7])
	}
}

func testReadAllFilters(t *testing.T, s es.Store) {
	orgA, orgB := uuid.NewString(), uuid.NewString()
	type appended struct {
		id     uuid.UUID
		stream string
		typ    string
		org    string
	}
	var (
		log  []appended
		last es.Position
	)
	streams := []string{stream("assistant"), stream("assistant"), stream("session"), stream("session")}
	types := []string{"AssistantCreated", "AssistantRenamed", "SessionStarted"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 40 {
		st := streams[rng.IntN(len(streams))]
		e := event(types[rng.IntN(len(types))], map[string]any{"x": rng.Int()})
		org := orgA
		if st == streams[1] || st == streams[3] {
			org = orgB
		}
		e.Metadata.OrganizationID = org
		last = mustAppend(t, s, st, es.Any, e).Position
		log = append(log, appended{e.ID, st, e.Type, org})
	}
	caughtUp(t, s, last)
	filters := []es.Filter{
		{Types: []string{"AssistantRenamed"}},
		{Types: []string{"AssistantCreated", "SessionStarted"}},
		{Streams: []string{streams[0]}},
		{Streams: []string{streams[1], streams[2]}},
		{OrganizationID: orgA},
		{OrganizationID: orgB, Types: []string{"SessionStarted"}},
		{OrganizationID: orgA, Streams: []string{streams[1]}}, // nothing: stream 1 is orgB's
		{OrganizationID: uuid.NewString()},
		{Types: []string{"NeverHappened"}},
	}
	for _, f := range filters {
		var want []uuid.UUID
		for _, a := range log {
			if f.Matches(es.Event{Stream: a.stream, Type: a.typ, Metadata: es.Metadata{OrganizationID: a.org}}) {
				want = append(want, a.id)
			}
		}
		for _, size := range []int{2, 0} {
			got := readAll(t, s, f, size)
			if !slices.Equal(ids(got), want) {
				t.Errorf("filter %+v, pages of %d: %d events, want %d in log order", f, size, len(got), len(want))
			}
			for _, e := range got {
				if !f.Matches(e) {
					t.Errorf("filter %+v let through %s %s", f, e.Type, e.Stream)
				}
			}
		}
	}
}

func testWaitWakes(t *testing.T, s es.Store) {
	ctx := ctxOf(t)
	st := stream("session")
	res := mustAppend(t, s, st, es.NoStream, events(1, "SessionStarted")...)

	// At the end of the log the wait must not end by itself quickly: give it a short context.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := s.WaitForEvents(short, res.Position)
	cancel()
	if err == nil {
		t.Log("WaitForEvents returned early at the end of the log (allowed, but look)")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with an expiring context: %v", err)
	}

	// An append while waiting wakes the waiter long before any fallback timer.
	next := event("SessionTouched", nil)
	go func() {
		time.Sleep(100 * time.Millisecond)
		if _, err := s.Append(context.Background(), st, es.Exact(1), next); err != nil {
			t.Errorf("append: %v", err)
		}
	}()
	deadline, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	started := time.Now()
	for {
		if err := s.WaitForEvents(deadline, res.Position); err != nil {
			t.Fatalf("not woken by an append within %v: %v", time.Since(started), err)
		}
		page, err := s.ReadAll(ctx, res.Position, 10, es.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 0 {
			if page[0].ID != next.ID {
				t.Fatalf("woke up to %s, want %s", page[0].ID, next.ID)
			}
			return
		}
	}
}

// testWaitForOrganization: es.WaitFor with an organization's filter (the
// store's own FilteredWaiter, or the fallback over WaitForEvents) wakes for
// that organization's event among others', and a read with the same filter
// finds it.
func testWaitForOrganization(t *testing.T, s es.Store) {
	ctx := ctxOf(t)
	orgA, orgB := "org-"+uuid.NewString(), "org-"+uuid.NewString()
	inOrg := func(org string, n int) []es.NewEvent {
		evs := events(n, "SessionTouched")
		for i := range evs {
			evs[i].Metadata.OrganizationID = org
		}
		return evs
	}
	st := stream("session")
	mustAppend(t, s, st, es.NoStream, inOrg(orgB, 3)...)
	mine := inOrg(orgA, 1)[0]
	go func() {
		time.Sleep(100 * time.Millisecond)
		for range 3 {
			if _, err := s.Append(context.Background(), stream("session"), es.NoStream, inOrg(orgB, 2)...); err != nil {
				t.Errorf("append: %v", err)
			}
		}
		if _, err := s.Append(context.Background(), stream("session"), es.NoStream, mine); err != nil {
			t.Errorf("append: %v", err)
		}
	}()
	deadline, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	filter := es.Filter{OrganizationID: orgA}
	wakes := 0
	for {
		page, err := s.ReadAll(ctx, es.Start, 10, filter)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 0 {
			if len(page) != 1 || page[0].ID != mine.ID {
				t.Fatalf("read %d events of organization A, want only %s", len(page), mine.ID)
			}
			t.Logf("woke %d times before organization A's event", wakes)
			return
		}
		if err := es.WaitFor(deadline, s, es.Start, filter); err != nil {
			t.Fatalf("not woken by organization A's event: %v", err)
		}
		wakes++
	}
}

func testWaitBehind(t *testing.T, s es.Store) {
	ctx := ctxOf(t)
	res := mustAppend(t, s, stream("session"), es.NoStream, events(2, "SessionStarted")...)
	caughtUp(t, s, res.Position)
	quick, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.WaitForEvents(quick, es.Start); err != nil {
		t.Fatalf("wait from the start of a non-empty log: %v", err)
	}
	done, cancel2 := context.WithCancel(ctx)
	cancel2()
	all := readAll(t, s, es.Filter{}, 0)
	if err := s.WaitForEvents(done, all[len(all)-1].Position); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a cancelled context at the end of the log: %v, want context.Canceled", err)
	}
}

// testConcurrentFollowers: writers append to shared streams while readers
// follow the log; every reader sees every event once, in one order.
func testConcurrentFollowers(t *testing.T, s es.Store) {
	ctx := ctxOf(t)
	const writers, appends, readers = 6, 25, 3
	streams := []string{stream("conversation"), stream("conversation"), stream("conversation"), stream("session")}
	var (
		mu        sync.Mutex
		committed = map[uuid.UUID]bool{}
		wg        sync.WaitGroup
	)
	total := writers * appends * 2
	seen := make([][]es.Event, readers)
	errs := make([]error, readers)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen[r], errs[r] = Follow(ctx, s, 1+r*5, func(n int) bool { return n >= total })
		}()
	}
	var ww sync.WaitGroup
	for w := range writers {
		ww.Add(1)
		go func() {
			defer ww.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range appends {
				batch := events(2, "MessagePosted")
				if _, err := s.Append(ctx, streams[rng.IntN(len(streams))], es.Any, batch...); err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				committed[batch[0].ID], committed[batch[1].ID] = true, true
				mu.Unlock()
			}
		}()
	}
	ww.Wait()
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("reader %d: %v", r, err)
		}
	}
	CheckReaders(t, committed, seen...)
	if t.Failed() {
		return
	}
	for r := range readers {
		extra, err := s.ReadAll(ctx, seen[r][len(seen[r])-1].Position, 10, es.Filter{})
		if err != nil || len(extra) > 0 {
			t.Fatalf("reader %d: after its last event the log holds %d more (%v)", r, len(extra), err)
		}
	}
}
