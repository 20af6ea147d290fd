package esdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// These tests cover the translation code and run everywhere. The adapter's
// behaviour against a server is proven by the contract suite in
// contract_test.go, which needs COMPANIN_TEST_ESDB_URL.

func TestExpectedRevision(t *testing.T) {
	cases := []struct {
		in   es.ExpectedVersion
		want esdb.ExpectedRevision
	}{
		{es.Any, esdb.Any{}},
		{es.NoStream, esdb.NoStream{}},
		{es.StreamExists, esdb.StreamExists{}},
		{es.Exact(0), esdb.NoStream{}},
		{es.Exact(1), esdb.Revision(0)},
		{es.Exact(7), esdb.Revision(6)},
		{es.Exact(math.MaxUint64), esdb.Revision(math.MaxUint64 - 1)},
	}
	for _, c := range cases {
		if got := expectedRevision(c.in); got != c.want {
			t.Errorf("expectedRevision(%s) = %#v, want %#v", c.in, got, c.want)
		}
	}
}

func TestVersionsAndRevisions(t *testing.T) {
	if versionOf(0) != 1 || versionOf(41) != 42 {
		t.Errorf("versionOf: revision 0 -> %d, 41 -> %d", versionOf(0), versionOf(41))
	}
	for from, want := range map[uint64]uint64{0: 0, 1: 0, 2: 1, 100: 99} {
		if got := revisionOf(from); got != want {
			t.Errorf("revisionOf(%d) = %d, want %d", from, got, want)
		}
	}
}

func TestPositionRoundTrip(t *testing.T) {
	for _, p := range []esdb.Position{
		{Commit: 0, Prepare: 0},
		{Commit: 1, Prepare: 1},
		{Commit: 0x1234, Prepare: 0x1200},
		{Commit: math.MaxUint64, Prepare: math.MaxUint64},
	} {
		enc := encodePosition(p)
		if len(enc) != positionWidth {
			t.Errorf("encodePosition(%v) = %q: width %d", p, enc, len(enc))
		}
		got, ok, err := decodePosition(enc)
		if err != nil || !ok || got != p {
			t.Errorf("decodePosition(%q) = %v, %v, %v; want %v", enc, got, ok, err, p)
		}
	}
	if _, ok, err := decodePosition(es.Start); ok || err != nil {
		t.Errorf("decodePosition(Start) = ok %v, err %v; want the beginning", ok, err)
	}
}

func TestDecodePositionRejectsForeignPositions(t *testing.T) {
	for _, p := range []es.Position{
		"0000000000000001",                  // the memory store's shape
		"0000000000000001000000000000000g",  // not hex
		"0000000000000001000000000000000A",  // upper case would sort differently
		"00000000000000010000000000000001 ", // wrong width
	} {
		if _, _, err := decodePosition(p); err == nil {
			t.Errorf("decodePosition(%q): no error", p)
		}
	}
}

// The port promises that positions compare in log order as plain strings.
func TestPositionStringOrderIsLogOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var ps []esdb.Position
	for range 500 {
		c := r.Uint64() >> r.IntN(64) // magnitudes from tiny to huge
		ps = append(ps, esdb.Position{Commit: c, Prepare: c - min(c, r.Uint64N(1000))})
	}
	// Events of one transaction share a commit position.
	ps = append(ps, esdb.Position{Commit: 500, Prepare: 400}, esdb.Position{Commit: 500, Prepare: 450}, esdb.Position{Commit: 500, Prepare: 500})
	for i := range ps {
		for j := range ps {
			a, b := ps[i], ps[j]
			if got, want := encodePosition(a) > encodePosition(b), positionAfter(a, b); got != want {
				t.Fatalf("%v vs %v: string order says after=%v, log order %v", a, b, got, want)
			}
			if encodePosition(a).After(encodePosition(b)) != positionAfter(a, b) {
				t.Fatalf("%v vs %v: es.Position.After disagrees with log order", a, b)
			}
		}
	}
	enc := make([]string, len(ps))
	for i, p := range ps {
		enc[i] = string(encodePosition(p))
	}
	sort.Strings(enc)
	slices.SortFunc(ps, func(a, b esdb.Position) int {
		switch {
		case positionAfter(a, b):
			return 1
		case positionAfter(b, a):
			return -1
		}
		return 0
	})
	for i := range ps {
		if enc[i] != string(encodePosition(ps[i])) {
			t.Fatalf("sorted strings and sorted positions differ at %d", i)
		}
	}
	if !encodePosition(esdb.Position{}).After(es.Start) {
		t.Error("the first position is not after Start")
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	m := es.Metadata{
		OrganizationID: "org-1", Actor: "api_key:abc", RequestID: "req-1",
		CorrelationID: "corr-1", CausationID: "cause-1", Subject: "usercontext-9",
		Personal: []string{"traits", "name"}, Extra: map[string]string{"k": "v"},
	}
	b, err := encodeMetadata(m, 3, "append-1")
	if err != nil {
		t.Fatal(err)
	}
	got, sv, appendID := decodeMetadata(b)
	if !metadataEqual(got, m) || sv != 3 || appendID != "append-1" {
		t.Errorf("round trip = %+v, %d, %q; want %+v, 3, append-1", got, sv, appendID, m)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{"organization_id": "org-1", "$correlationId": "corr-1", "$causationId": "cause-1", "schema_version": 3.0} {
		if raw[key] != want {
			t.Errorf("metadata JSON %s = %v, want %v (in %s)", key, raw[key], want, b)
		}
	}
}

func TestMetadataOfOtherWriters(t *testing.T) {
	for _, b := range [][]byte{nil, []byte(""), []byte("not json"), []byte(`{"$correlationId":"x"}`), []byte(`[1,2]`)} {
		m, sv, id := decodeMetadata(b)
		if sv != 1 || id != "" || m.CorrelationID != "" || m.OrganizationID != "" {
			t.Errorf("decodeMetadata(%q) = %+v, %d, %q; want empty metadata, schema 1", b, m, sv, id)
		}
	}
}

func TestEventRoundTrip(t *testing.T) {
	n := es.NewEvent{
		ID: uuid.New(), Type: "ContextUpdated", SchemaVersion: 2,
		Data:     json.RawMessage(`{"a":1,"b":"x"}`),
		Metadata: es.Metadata{OrganizationID: "org-1", Actor: "cli"},
	}
	d, err := toEventData(n, "append-7")
	if err != nil {
		t.Fatal(err)
	}
	if d.EventID != n.ID || d.EventType != n.Type || d.ContentType != esdb.ContentTypeJson || string(d.Data) != string(n.Data) {
		t.Fatalf("toEventData = %+v", d)
	}
	at := time.Date(2026, 11, 25, 21, 0, 0, 0, time.FixedZone("x", 3600))
	r := &esdb.RecordedEvent{
		EventID: d.EventID, EventType: d.EventType, StreamID: "usercontext-1", EventNumber: 4,
		Position: esdb.Position{Commit: 900, Prepare: 880}, CreatedDate: at,
		Data: d.Data, UserMetadata: d.Metadata,
	}
	e, appendID := toEvent(r)
	if appendID != "append-7" {
		t.Errorf("append id = %q", appendID)
	}
	if e.ID != n.ID || e.Stream != "usercontext-1" || e.Version != 5 || e.Type != n.Type || e.SchemaVersion != 2 ||
		!e.SameContent(n) || !metadataEqual(e.Metadata, n.Metadata) || !e.RecordedAt.Equal(at) || e.RecordedAt.Location() != time.UTC {
		t.Errorf("toEvent = %+v", e)
	}
	if e.Position != encodePosition(r.Position) || e.GlobalPosition != 880 {
		t.Errorf("position = %q, global %d", e.Position, e.GlobalPosition)
	}
	r.Position = esdb.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64} // a stream read on a server before 22.6
	if e, _ := toEvent(r); e.Position != es.Start || e.GlobalPosition != 0 {
		t.Errorf("no position read as %q/%d", e.Position, e.GlobalPosition)
	}
	r.Data = nil
	if e, _ := toEvent(r); e.Data != nil {
		t.Errorf("empty data read as %q, want nil", e.Data)
	}
}

func TestCheckStored(t *testing.T) {
	a := es.NewEvent{ID: uuid.New(), Type: "A", Data: json.RawMessage(`{"x":1}`)}
	b := es.NewEvent{ID: uuid.New(), Type: "B", Data: json.RawMessage(`{"y":2}`)}
	stored := func(appendID string, evs ...es.NewEvent) []recorded {
		var out []recorded
		for i, n := range evs {
			out = append(out, recorded{appendID: appendID, event: es.Event{
				ID: n.ID, Type: n.Type, Data: n.Data, Version: uint64(i + 3),
				Position: encodePosition(esdb.Position{Commit: uint64(100 + i), Prepare: uint64(100 + i)}),
			}})
		}
		return out
	}
	res, err := checkStored("s", []es.NewEvent{a, b}, stored("mine", a, b), "mine")
	if err != nil || res.Replayed || res.NextExpectedVersion != 4 || res.Position != encodePosition(esdb.Position{Commit: 101, Prepare: 101}) {
		t.Errorf("fresh write: %+v, %v", res, err)
	}
	res, err = checkStored("s", []es.NewEvent{a, b}, stored("earlier", a, b), "mine")
	if err != nil || !res.Replayed || res.NextExpectedVersion != 4 {
		t.Errorf("retry: %+v, %v", res, err)
	}
	// Same id, other content: EventStoreDB acknowledges it as a retry.
	other := b
	other.Data = json.RawMessage(`{"y":3}`)
	if _, err := checkStored("s", []es.NewEvent{a, other}, stored("earlier", a, b), "mine"); !errors.Is(err, es.ErrDuplicateEventID) {
		t.Errorf("same id, other content: err = %v, want ErrDuplicateEventID", err)
	}
	if _, err := checkStored("s", []es.NewEvent{a, b}, stored("mine", a), "mine"); err == nil {
		t.Error("short read back: no error")
	}
}

func TestMapError(t *testing.T) {
	wrong := fmt.Errorf("send: %w", newClientError(esdb.ErrorCodeWrongExpectedVersion))
	if err := mapError("append", wrong); !errors.Is(err, es.ErrWrongExpectedVersion) {
		t.Errorf("wrong expected version -> %v", err)
	}
	for _, code := range []esdb.ErrorCode{esdb.ErrorCodeResourceNotFound, esdb.ErrorCodeStreamDeleted} {
		if err := mapError("read", newClientError(code)); !errors.Is(err, es.ErrStreamNotFound) {
			t.Errorf("code %d -> %v, want ErrStreamNotFound", code, err)
		}
	}
	for _, in := range []error{newClientError(esdb.ErrorCodeAccessDenied), newClientError(esdb.ErrorUnavailable), errors.New("boom")} {
		err := mapError("read", in)
		if errors.Is(err, es.ErrStreamNotFound) || errors.Is(err, es.ErrWrongExpectedVersion) || !errors.Is(err, in) {
			t.Errorf("%v -> %v: want it wrapped, not mapped", in, err)
		}
	}
	if mapError("x", nil) != nil {
		t.Error("nil error mapped to non-nil")
	}
}

// clientError stands for *esdb.Error, whose code cannot be set from outside
// its package; mapError matches both by their Code method.
type clientError struct{ code esdb.ErrorCode }

func (e *clientError) Error() string           { return fmt.Sprintf("esdb error %d", e.code) }
func (e *clientError) Code() esdb.ErrorCode    { return e.code }
func newClientError(code esdb.ErrorCode) error { return &clientError{code: code} }

func TestMapErrorMatchesTheClientsErrorType(t *testing.T) {
	real, _ := esdb.FromError(errors.New("connection refused"))
	var _ interface{ Code() esdb.ErrorCode } = real
	if err := mapError("read", real); errors.Is(err, es.ErrStreamNotFound) || !errors.Is(err, real) {
		t.Errorf("unknown client error -> %v", err)
	}
}

func TestIsSystem(t *testing.T) {
	for _, c := range []struct {
		typ, stream string
		want        bool
	}{
		{"ContextUpdated", "usercontext-1", false},
		{"$metadata", "$$usercontext-1", true},
		{"$statsCollected", "$stats-127.0.0.1:2113", true},
		{"$>", "$ce-usercontext", true},
		{"Something", "$projections-x", true},
	} {
		if got := isSystem(&esdb.RecordedEvent{EventType: c.typ, StreamID: c.stream}); got != c.want {
			t.Errorf("isSystem(%s in %s) = %v", c.typ, c.stream, got)
		}
	}
}

func metadataEqual(a, b es.Metadata) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestValidate(t *testing.T) {
	ok := es.NewEvent{ID: uuid.New(), Type: "A"}
	twice := []es.NewEvent{ok, {ID: uuid.New(), Type: "B"}, ok}
	cases := map[string]struct {
		stream string
		events []es.NewEvent
	}{
		"empty stream name":  {"", []es.NewEvent{ok}},
		"system stream name": {"$all", []es.NewEvent{ok}},
		"no type":            {"s-1", []es.NewEvent{{ID: uuid.New()}}},
		"no id":              {"s-1", []es.NewEvent{{Type: "A"}}},
		"data not JSON":      {"s-1", []es.NewEvent{{ID: uuid.New(), Type: "A", Data: json.RawMessage("{")}}},
		"one id twice":       {"s-1", twice},
	}
	for name, c := range cases {
		if err := validate(c.stream, c.events); !errors.Is(err, es.ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", name, err)
		}
	}
	if err := validate("s-1", []es.NewEvent{ok}); err != nil {
		t.Errorf("valid append: %v", err)
	}
	if err := validate("s-1", nil); err != nil {
		t.Errorf("empty append: %v", err)
	}
}

func TestNamespace(t *testing.T) {
	s := &Store{}
	WithNamespace("test-1")(s)
	r := &esdb.RecordedEvent{EventID: uuid.New(), EventType: "A", StreamID: "test-1:session-9"}
	if !s.ours(r) {
		t.Error("own event not recognised")
	}
	if e, _ := s.toEvent(r); e.Stream != "session-9" {
		t.Errorf("stream %q, want the namespace stripped", e.Stream)
	}
	for _, other := range []*esdb.RecordedEvent{
		{EventType: "A", StreamID: "session-9"},
		{EventType: "A", StreamID: "test-2:session-9"},
		{EventType: "$metadata", StreamID: "$$test-1:session-9"},
	} {
		if s.ours(other) {
			t.Errorf("%s in %s counted as ours", other.EventType, other.StreamID)
		}
	}
	plain := &Store{}
	WithNamespace("")(plain)
	if !plain.ours(&esdb.RecordedEvent{EventType: "A", StreamID: "test-1:session-9"}) || plain.ours(&esdb.RecordedEvent{EventType: "$>", StreamID: "$ce-session"}) {
		t.Error("without a namespace every non-system event is ours")
	}
}
