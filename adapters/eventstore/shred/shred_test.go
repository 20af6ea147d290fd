package shred_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/adapters/eventstore/shred"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

const (
	alice = "usercontext-00000000-0000-0000-0000-00000000a11c"
	bob   = "usercontext-00000000-0000-0000-0000-000000000b0b"
)

// personal makes an event with Alice's (or another subject's) personal data
// in "name" and "traits", and a field that is not personal.
func personal(subject, name, email string) es.NewEvent {
	return es.NewEvent{
		ID:   uuid.New(),
		Type: "ContextUpdated",
		Data: json.RawMessage(`{"name":"` + name + `","traits":{"email":"` + email + `","age":41},"plan":"pro"}`),
		Metadata: es.Metadata{
			OrganizationID: "org-1", Subject: subject, Personal: []string{"name", "traits", "absent"},
		},
	}
}

func fields(t *testing.T, data json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("data %s: %v", data, err)
	}
	return m
}

// rawLog is everything the inner store holds, as JSON: what an attacker with
// the database, an export that bypassed the decorator, or a backup would see.
func rawLog(t *testing.T, inner es.Store) string {
	t.Helper()
	evs, err := inner.ReadAll(context.Background(), es.Start, 0, es.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	inner := memory.New()
	s := shred.New(inner, shred.NewMemoryKeys())
	e := personal(alice, "Alice Liddell", "alice@example.org")
	if _, err := s.Append(ctx, "usercontext-1", es.NoStream, e); err != nil {
		t.Fatal(err)
	}

	raw := rawLog(t, inner)
	for _, secret := range []string{"Alice Liddell", "alice@example.org", `"age"`} { // none can occur in base64
		if strings.Contains(raw, secret) {
			t.Errorf("inner store holds %q in the clear: %s", secret, raw)
		}
	}
	if !strings.Contains(raw, `"pro"`) || !strings.Contains(raw, `$enc`) {
		t.Errorf("inner store should hold the non-personal field and ciphertexts: %s", raw)
	}

	byStream, err := s.ReadStream(ctx, "usercontext-1", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.ReadAll(ctx, es.Start, 0, es.Filter{OrganizationID: "org-1", Types: []string{"ContextUpdated"}})
	if err != nil {
		t.Fatal(err)
	}
	for name, evs := range map[string][]es.Event{"ReadStream": byStream, "ReadAll": all} {
		if len(evs) != 1 {
			t.Fatalf("%s: %d events", name, len(evs))
		}
		if !evs[0].SameContent(e) {
			t.Errorf("%s: data %s, want %s", name, evs[0].Data, e.Data)
		}
		if evs[0].Metadata.Extra[shred.Erased] != "" {
			t.Errorf("%s: marked erased: %+v", name, evs[0].Metadata)
		}
	}
}

func TestEraseNullsPersonalFieldsEverywhere(t *testing.T) {
	ctx := context.Background()
	inner := memory.New()
	s := shred.New(inner, shred.NewMemoryKeys())
	a1 := personal(alice, "Alice Liddell", "alice@example.org")
	a2 := personal(alice, "Alice L.", "al@example.org")
	b1 := personal(bob, "Bob Builder", "bob@example.org")
	plain := es.NewEvent{ID: uuid.New(), Type: "ContextCreated", Data: json.RawMessage(`{"plan":"free"}`)}
	if _, err := s.Append(ctx, "usercontext-a", es.NoStream, plain, a1, a2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "usercontext-b", es.NoStream, b1); err != nil {
		t.Fatal(err)
	}

	if err := s.Erase(ctx, alice); err != nil {
		t.Fatal(err)
	}

	byStream, err := s.ReadStream(ctx, "usercontext-a", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.ReadAll(ctx, es.Start, 0, es.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(byStream) != 3 || len(all) != 4 {
		t.Fatalf("the log must stay whole: %d events in the stream, %d in all", len(byStream), len(all))
	}
	for name, evs := range map[string][]es.Event{"ReadStream": byStream[1:], "ReadAll": all[1:3]} {
		for _, e := range evs {
			got := fields(t, e.Data)
			if got["name"] != nil || got["traits"] != nil {
				t.Errorf("%s: %s v%d still has personal data after erasure: %s", name, e.Stream, e.Version, e.Data)
			}
			if _, ok := got["name"]; !ok {
				t.Errorf("%s: erased field must read as null, not vanish: %s", name, e.Data)
			}
			if got["plan"] != "pro" {
				t.Errorf("%s: non-personal field lost: %s", name, e.Data)
			}
			if e.Metadata.Extra[shred.Erased] != "true" || e.Metadata.OrganizationID != "org-1" {
				t.Errorf("%s: metadata %+v, want erased marker and the rest kept", name, e.Metadata)
			}
		}
	}
	if !all[0].SameContent(plain) || all[0].Metadata.Extra[shred.Erased] != "" {
		t.Errorf("event without personal data changed: %+v", all[0])
	}
	if !all[3].SameContent(b1) || all[3].Metadata.Extra[shred.Erased] != "" {
		t.Errorf("Bob's data must stay readable: %s", all[3].Data)
	}
	raw := rawLog(t, inner)
	for _, secret := range []string{"Alice Liddell", "Alice L.", "alice@example.org", "al@example.org"} {
		if strings.Contains(raw, secret) {
			t.Errorf("inner store holds %q: %s", secret, raw)
		}
	}

	// An erased subject stays erased: no new key seals data written after
	// (or racing) the erasure.
	a3 := personal(alice, "Alice Again", "again@example.org")
	if _, err := s.Append(ctx, "usercontext-a", es.Exact(3), a3); !errors.Is(err, shred.ErrErased) {
		t.Fatalf("append after erasure: err = %v, want ErrErased", err)
	}
	if evs, err := s.ReadStream(ctx, "usercontext-a", 1, 0); err != nil || len(evs) != 3 {
		t.Errorf("the refused append stored something: %d events (%v)", len(evs), err)
	}
	if _, err := s.Append(ctx, "usercontext-a", es.Exact(3), plain2()); err != nil {
		t.Errorf("events without personal fields still append: %v", err)
	}
}

func plain2() es.NewEvent {
	return es.NewEvent{ID: uuid.New(), Type: "ContextErased", Data: json.RawMessage(`{"by":"api"}`), Metadata: es.Metadata{Subject: alice}}
}

func TestIdempotentRetryReplays(t *testing.T) {
	ctx := context.Background()
	inner := memory.New()
	s := shred.New(inner, shred.NewMemoryKeys())
	e1 := personal(alice, "Alice", "alice@example.org")
	e2 := personal(alice, "Alice", "alice@example.org") // same values, other event
	first, err := s.Append(ctx, "usercontext-1", es.NoStream, e1, e2)
	if err != nil {
		t.Fatal(err)
	}

	// The retry formats the same values differently.
	retry := []es.NewEvent{e1, e2}
	retry[0].Data = json.RawMessage(`{ "plan": "pro", "traits": {"age": 41, "email": "alice@example.org"}, "name": "Alice" }`)
	again, err := s.Append(ctx, "usercontext-1", es.NoStream, retry...)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !again.Replayed || again.Position != first.Position || again.NextExpectedVersion != 2 {
		t.Errorf("retry = %+v, want the first result %+v replayed", again, first)
	}
	raw, err := inner.ReadStream(ctx, "usercontext-1", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 2 {
		t.Fatalf("retry stored events: %d in the stream", len(raw))
	}
	if string(raw[0].Data) == string(raw[1].Data) {
		t.Error("two events with the same values encrypt alike: the nonce must depend on the event id")
	}

	other := e1
	other.Data = json.RawMessage(`{"name":"Mallory","plan":"pro"}`)
	if _, err := s.Append(ctx, "usercontext-1", es.Any, other); !errors.Is(err, es.ErrDuplicateEventID) {
		t.Errorf("same id, other personal content: err = %v, want ErrDuplicateEventID", err)
	}
}

func TestAppendLeavesTheCallersEventsAlone(t *testing.T) {
	s := shred.New(memory.New(), shred.NewMemoryKeys())
	e := personal(alice, "Alice", "alice@example.org")
	before := string(e.Data)
	events := []es.NewEvent{e}
	if _, err := s.Append(context.Background(), "usercontext-1", es.Any, events...); err != nil {
		t.Fatal(err)
	}
	if string(events[0].Data) != before {
		t.Errorf("caller's event changed to %s", events[0].Data)
	}
}

func TestAppendRejects(t *testing.T) {
	s := shred.New(memory.New(), shred.NewMemoryKeys())
	noSubject := personal("", "Alice", "a@example.org")
	notObject := personal(alice, "", "")
	notObject.Data = json.RawMessage(`["Alice"]`)
	badJSON := personal(alice, "", "")
	badJSON.Data = json.RawMessage(`{"name":`)
	for name, e := range map[string]es.NewEvent{"no subject": noSubject, "not an object": notObject, "bad JSON": badJSON} {
		if _, err := s.Append(context.Background(), "usercontext-1", es.Any, e); !errors.Is(err, es.ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", name, err)
		}
	}
}

// failingKeys stands for a key store that is down (not for a database).
type failingKeys struct{ shred.KeyStore }

func (failingKeys) Key(context.Context, string, bool) ([]byte, error) {
	return nil, errors.New("connection refused")
}

// A key store that fails must fail the read: reading the data as erased
// would let a projection write nulls for good.
func TestKeyStoreFailureIsNotErasure(t *testing.T) {
	ctx := context.Background()
	inner := memory.New()
	if _, err := shred.New(inner, shred.NewMemoryKeys()).Append(ctx, "usercontext-1", es.Any, personal(alice, "Alice", "a@example.org")); err != nil {
		t.Fatal(err)
	}
	down := shred.New(inner, failingKeys{})
	if evs, err := down.ReadAll(ctx, es.Start, 0, es.Filter{}); err == nil {
		t.Errorf("read with a failing key store = %s, want an error", evs[0].Data)
	}
	if _, err := down.ReadStream(ctx, "usercontext-1", 1, 0); err == nil {
		t.Error("ReadStream with a failing key store: no error")
	}
	if _, err := down.Append(ctx, "usercontext-1", es.Any, personal(alice, "Alice", "a@example.org")); err == nil {
		t.Error("Append with a failing key store: no error")
	}
}

// Events written in the clear (before shredding was configured) stay readable.
func TestClearValuesPassThrough(t *testing.T) {
	ctx := context.Background()
	inner := memory.New()
	e := personal(alice, "Alice", "a@example.org")
	if _, err := inner.Append(ctx, "usercontext-1", es.Any, e); err != nil {
		t.Fatal(err)
	}
	s := shred.New(inner, shred.NewMemoryKeys())
	evs, err := s.ReadStream(ctx, "usercontext-1", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !evs[0].SameContent(e) || evs[0].Metadata.Extra[shred.Erased] != "" {
		t.Errorf("clear event read as %s %+v", evs[0].Data, evs[0].Metadata)
	}
}

// A ciphertext moved to another field or event does not open: it reads as erased.
func TestCiphertextIsBoundToItsEventAndField(t *testing.T) {
	ctx := context.Background()
	keys := shred.NewMemoryKeys()
	inner := memory.New()
	s := shred.New(inner, keys)
	e := personal(alice, "Alice", "a@example.org")
	if _, err := s.Append(ctx, "usercontext-1", es.Any, e); err != nil {
		t.Fatal(err)
	}
	raw, err := inner.ReadStream(ctx, "usercontext-1", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw[0].Data, &m); err != nil {
		t.Fatal(err)
	}
	swapped := es.NewEvent{ID: uuid.New(), Type: "ContextUpdated", Metadata: e.Metadata}
	swapped.Data, _ = json.Marshal(map[string]json.RawMessage{"name": m["traits"], "traits": m["traits"]})
	if _, err := inner.Append(ctx, "usercontext-1", es.Any, swapped); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ReadStream(ctx, "usercontext-1", 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := fields(t, evs[0].Data); got["name"] != nil || got["traits"] != nil || evs[0].Metadata.Extra[shred.Erased] != "true" {
		t.Errorf("moved ciphertext opened: %s", evs[0].Data)
	}
}

func TestMemoryKeys(t *testing.T) {
	ctx := context.Background()
	k := shred.NewMemoryKeys()
	if _, err := k.Key(ctx, alice, false); !errors.Is(err, shred.ErrKeyNotFound) {
		t.Errorf("missing key: err = %v", err)
	}
	k1, err := k.Key(ctx, alice, true)
	if err != nil || len(k1) != shred.KeySize {
		t.Fatalf("create: %x, %v", k1, err)
	}
	k2, _ := k.Key(ctx, alice, false)
	k3, _ := k.Key(ctx, bob, true)
	if !slices.Equal(k1, k2) || slices.Equal(k1, k3) {
		t.Error("keys must be stable per subject and differ between subjects")
	}
	if err := k.Destroy(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Key(ctx, alice, false); !errors.Is(err, shred.ErrKeyNotFound) {
		t.Errorf("destroyed key: err = %v", err)
	}
	if err := k.Destroy(ctx, alice); err != nil {
		t.Errorf("second destroy: %v", err)
	}
	if _, err := k.Key(ctx, alice, true); !errors.Is(err, shred.ErrErased) {
		t.Errorf("create after destroy: err = %v, want ErrErased", err)
	}
}

// Events written before a field became personal hold it in the clear: once
// their subject is erased, Redact nulls it on every read too, and the
// stored event stays as it was.
func TestRedactClearFieldsOfErasedSubjects(t *testing.T) {
	ctx := context.Background()
	inner := memory.New()
	old := func(subject string) es.NewEvent {
		return es.NewEvent{ID: uuid.New(), Type: "ConversationStarted",
			Data:     json.RawMessage(`{"customer_id":"zelda-1","title":"Zelda Erasmus complaint","metadata":{"email":"zelda@example.org"},"locale":"en"}`),
			Metadata: es.Metadata{Subject: subject, Personal: []string{"customer_id"}}}
	}
	if _, err := inner.Append(ctx, "conversation-a", es.NoStream, old(alice)); err != nil {
		t.Fatal(err)
	}
	if _, err := inner.Append(ctx, "conversation-b", es.NoStream, old(bob)); err != nil {
		t.Fatal(err)
	}
	s := shred.New(inner, shred.NewMemoryKeys(), shred.Redact(map[string][]string{"ConversationStarted": {"customer_id", "title", "metadata"}}))
	if evs, err := s.ReadStream(ctx, "conversation-a", 1, 0); err != nil || fields(t, evs[0].Data)["title"] != "Zelda Erasmus complaint" {
		t.Fatalf("before erasure the clear title reads as written: %v %v", evs, err)
	}
	if err := s.Erase(ctx, alice); err != nil {
		t.Fatal(err)
	}
	all, err := s.ReadAll(ctx, es.Start, 0, es.Filter{})
	if err != nil || len(all) != 2 {
		t.Fatalf("%v %v", all, err)
	}
	got := fields(t, all[0].Data)
	if got["title"] != nil || got["metadata"] != nil || got["customer_id"] != nil || got["locale"] != "en" || all[0].Metadata.Extra[shred.Erased] != "true" {
		t.Errorf("erased subject's old event: %s %+v", all[0].Data, all[0].Metadata)
	}
	if fields(t, all[1].Data)["title"] != "Zelda Erasmus complaint" || all[1].Metadata.Extra[shred.Erased] != "" {
		t.Errorf("another subject's old event changed: %s", all[1].Data)
	}
	if !strings.Contains(rawLog(t, inner), "Zelda Erasmus complaint") {
		t.Error("the stored event must stay as written (the log is immutable)")
	}
}
