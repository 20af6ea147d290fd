package httpapi

import (
	"context"
	"encoding/json"
	"github.com/companin/companin/adapters/postgres/secrets"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/postgres"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/usercontext"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// zelda is the person of the erasure tests: every string of hers that must
// be unreadable after DELETE.
var zelda = []string{"Zelda", "zelda@example.org", "Erasmus", "ORD-7731"}

// shows reports which of zelda's strings s holds.
func shows(s string) []string {
	var found []string
	for _, z := range zelda {
		if strings.Contains(s, z) {
			found = append(found, z)
		}
	}
	return found
}

// Every reproduction of issue 10's erasure findings, through the real router
// on PostgreSQL: after DELETE nothing names or describes the person in read
// models, events, the NDJSON export, a rebuild, the raw events table or the
// idempotency cache, and a retry answers the same tombstone.
func TestErasureLeavesNothingReadable(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	org := ts.org
	asst := ts.newAssistant(t, org)
	uc := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", org,
		`{"user_reference":"zelda@example.org","traits":{"name":"Zelda Erasmus","plan":"pro"}}`, "Idempotency-Key", "ctx-1"), http.StatusCreated)
	conv := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/conversations/", org,
		`{"assistant_id":"`+asst+`","customer_id":"cust-1","user_context_id":"zelda@example.org","title":"Zelda Erasmus complaint","metadata":{"email":"zelda@example.org"}}`,
		"Idempotency-Key", "conv-1"), http.StatusCreated)
	cid := conv["id"].(string)
	if conv["title"] != "Zelda Erasmus complaint" {
		t.Fatalf("conversation before erasure: %v", conv)
	}
	expectPosted(t, ts.do(t, http.MethodPost, "/api/v1/conversations/"+cid+"/messages?wait=0", org,
		`{"content":"where is my parcel","metadata":{"order":"ORD-7731","email":"zelda@example.org"}}`, "Idempotency-Key", "msg-1"))

	// At rest the log holds none of it in the clear, even before erasure.
	if raw := rawEvents(t, ts); len(shows(raw)) > 0 {
		t.Errorf("events table holds %v in the clear", shows(raw))
	}

	d := expectStatus(t, ts.do(t, http.MethodDelete, "/api/v1/contexts/zelda@example.org", org, ""), http.StatusOK)
	if d["id"] != uc["id"] || d["erased"] != true || d["erased_at"] == nil {
		t.Fatalf("erase: %v", d)
	}
	// Retries answer the same, by id and by the reference it freed.
	for _, ref := range []string{uc["id"].(string), "zelda@example.org"} {
		again := expectStatus(t, ts.do(t, http.MethodDelete, "/api/v1/contexts/"+ref, org, ""), http.StatusOK)
		if again["id"] != d["id"] || again["erased_at"] != d["erased_at"] || again["erased"] != true {
			t.Fatalf("retry by %s: %v, first %v", ref, again, d)
		}
	}
	// GET is a plain 404, by id and by reference.
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/contexts/"+uc["id"].(string), org, ""), http.StatusNotFound)
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/contexts/zelda@example.org", org, ""), http.StatusNotFound)

	unreadable := func(when string) {
		t.Helper()
		for _, path := range []string{
			"/api/v1/conversations/" + cid, "/api/v1/conversations/?limit=100", "/api/v1/conversations/" + cid + "/messages",
			"/api/v1/conversations/" + cid + "/events", "/api/v1/events?limit=100",
		} {
			if r := ts.do(t, http.MethodGet, path, org, ""); r.Status != http.StatusOK || len(shows(string(r.Body))) > 0 {
				t.Errorf("%s: %s shows %v: %d %s", when, path, shows(string(r.Body)), r.Status, r.Body)
			}
		}
		if r := ts.do(t, http.MethodGet, "/api/v1/events", org, "", "Accept", "application/x-ndjson"); r.Status != http.StatusOK || len(shows(string(r.Body))) > 0 {
			t.Errorf("%s: the export shows %v", when, shows(string(r.Body)))
		}
		c := expectStatus(t, ts.do(t, http.MethodGet, "/api/v1/conversations/"+cid, org, ""), http.StatusOK)
		if c["title"] != "" || len(c["metadata"].(map[string]any)) != 0 || c["customer_id"] != "" {
			t.Errorf("%s: conversation %v", when, c)
		}
		var left int
		if err := ts.Pool.QueryRow(context.Background(), `
			SELECT (SELECT count(*) FROM conversations WHERE title LIKE '%Zelda%' OR metadata::text LIKE '%zelda%')
			     + (SELECT count(*) FROM messages WHERE metadata::text LIKE '%zelda%' OR metadata::text LIKE '%ORD-7731%')
			     + (SELECT count(*) FROM user_contexts WHERE traits::text LIKE '%Zelda%' OR user_reference LIKE '%zelda%')
			     + (SELECT count(*) FROM idempotency_keys WHERE position('Zelda'::bytea IN body) > 0 OR position('zelda'::bytea IN body) > 0)`).Scan(&left); err != nil || left != 0 {
			t.Errorf("%s: %d rows of read models or stored responses keep her (%v)", when, left, err)
		}
	}
	unreadable("after erasure")

	// The stored responses are gone: each key runs its request again, which
	// is refused now, instead of replaying her data.
	conv2 := ts.do(t, http.MethodPost, "/api/v1/conversations/", org,
		`{"assistant_id":"`+asst+`","customer_id":"cust-1","user_context_id":"zelda@example.org","title":"Zelda Erasmus complaint","metadata":{"email":"zelda@example.org"}}`,
		"Idempotency-Key", "conv-1")
	if conv2.Status != http.StatusUnprocessableEntity || conv2.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("conversation key after erasure: %d %v %s", conv2.Status, conv2.Header, conv2.Body)
	}
	msg2 := ts.do(t, http.MethodPost, "/api/v1/conversations/"+cid+"/messages?wait=0", org,
		`{"content":"where is my parcel","metadata":{"order":"ORD-7731","email":"zelda@example.org"}}`, "Idempotency-Key", "msg-1")
	if msg2.Status != http.StatusConflict || msg2.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("message key after erasure: %d %v %s", msg2.Status, msg2.Header, msg2.Body)
	}

	if err := messaging.Rebuild(context.Background(), ts.Store, ts.Pool, testProjections(), ""); err != nil {
		t.Fatal(err)
	}
	history, err := ts.Store.ReadStream(context.Background(), "usercontext-"+uc["id"].(string), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	ts.settle(t, history[len(history)-1].Position)
	unreadable("after rebuild")

	// The reservation's stream name is keyed: the unkeyed hash of her
	// reference names no stream, so a guess cannot be confirmed from the log.
	legacy := usercontext.LegacyReferenceStream(org.ID, "zelda@example.org")
	if evs, err := ts.Store.ReadStream(context.Background(), legacy, 1, 0); err == nil && len(evs) > 0 {
		t.Errorf("a reservation stream is named by the unkeyed hash %s", legacy)
	}
	refs, err := secrets.NewReferenceKeys(ts.Pool).References(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if evs, err := ts.Store.ReadStream(context.Background(), refs.Stream(org.ID, "zelda@example.org"), 1, 0); err != nil || len(evs) != 2 {
		t.Errorf("keyed reservation stream: %d events (%v), want reserved and released", len(evs), err)
	}

	// Her create key runs again too: a new person, not a replay of her.
	again := ts.do(t, http.MethodPost, "/api/v1/contexts/", org,
		`{"user_reference":"zelda@example.org","traits":{"name":"Zelda Erasmus","plan":"pro"}}`, "Idempotency-Key", "ctx-1")
	if again.Status != http.StatusCreated || again.Header.Get("Idempotent-Replayed") != "" || again.data(t)["id"] == uc["id"] {
		t.Errorf("create key after erasure: %d %v %s", again.Status, again.Header, again.Body)
	}
}

// rawEvents is the events table as text: what a database dump shows.
func rawEvents(t *testing.T, ts *testServer) string {
	t.Helper()
	var all string
	if err := ts.Pool.QueryRow(context.Background(),
		`SELECT coalesce(string_agg(stream || ' ' || coalesce(data::text, '') || metadata::text, E'\n'), '') FROM events`).Scan(&all); err != nil {
		t.Fatal(err)
	}
	return all
}

// Events written before titles and metadata were personal hold them in the
// clear. They keep decoding as they are, and once the person is erased their
// fields read as null everywhere (the golden JSON below is what the earlier
// version wrote).
func TestErasureOfEventsWrittenBeforeFieldsWerePersonal(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	org := ts.org
	ctx := es.WithMetadata(context.Background(), es.Metadata{OrganizationID: org.ID, Actor: "api_key:" + org.ClientID})
	asst := ts.newAssistant(t, org)
	uc := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", org, `{"user_reference":"zelda-old","traits":{"name":"Zelda"}}`), http.StatusCreated)
	ucID := uc["id"].(string)

	// Straight into the PostgreSQL log, past the shredding store: the shapes
	// of the old version (customer_id alone personal, and here left clear).
	raw, err := postgres.New(ctx, ts.Pool)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	cid, mid := uuid.New(), uuid.New()
	meta := es.Metadata{OrganizationID: org.ID, Actor: "api_key:" + org.ClientID, Subject: ucID, Personal: []string{"customer_id"}}
	started := `{"conversation_id":"` + cid.String() + `","assistant_id":"` + asst + `","customer_id":"cust-old","user_context_id":"` + ucID +
		`","title":"Zelda Erasmus complaint","locale":"en","metadata":{"email":"zelda@example.org"},"started_at":"2026-11-20T10:00:00Z"}`
	posted := `{"message_id":"` + mid.String() + `","role":"user","content":"hello","metadata":{"order":"ORD-7731"},"posted_at":"2026-11-20T10:01:00Z"}`
	msgMeta := meta
	msgMeta.Personal = []string{"content"}
	res, err := raw.Append(ctx, "conversation-"+cid.String(), es.NoStream,
		es.NewEvent{ID: uuid.New(), Type: "ConversationStarted", SchemaVersion: 1, Data: json.RawMessage(started), Metadata: meta},
		es.NewEvent{ID: mid, Type: "MessagePosted", SchemaVersion: 1, Data: json.RawMessage(posted), Metadata: msgMeta})
	if err != nil {
		t.Fatal(err)
	}
	ts.settle(t, res.Position)
	c := expectStatus(t, ts.do(t, http.MethodGet, "/api/v1/conversations/"+cid.String(), org, ""), http.StatusOK)
	if c["title"] != "Zelda Erasmus complaint" || c["customer_id"] != "cust-old" {
		t.Fatalf("old events must keep decoding: %v", c)
	}

	expectStatus(t, ts.do(t, http.MethodDelete, "/api/v1/contexts/"+ucID, org, ""), http.StatusOK)
	check := func(when string) {
		t.Helper()
		for _, path := range []string{"/api/v1/conversations/" + cid.String(), "/api/v1/conversations/" + cid.String() + "/messages",
			"/api/v1/conversations/" + cid.String() + "/events", "/api/v1/events?limit=100"} {
			if r := ts.do(t, http.MethodGet, path, org, ""); r.Status != http.StatusOK || len(shows(string(r.Body))) > 0 || strings.Contains(string(r.Body), "cust-old") {
				t.Errorf("%s: %s shows %v: %s", when, path, shows(string(r.Body)), r.Body)
			}
		}
	}
	check("after erasure")
	if err := messaging.Rebuild(context.Background(), ts.Store, ts.Pool, testProjections(), ""); err != nil {
		t.Fatal(err)
	}
	history, err := ts.Store.ReadStream(context.Background(), "usercontext-"+ucID, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	ts.settle(t, history[len(history)-1].Position)
	check("after rebuild")
}

// Erasure must not wait for, nor fail because of, a long transaction
// elsewhere (a pg_dump): the DELETE answers, the key is gone for every later
// read, and other organizations' context writes go on meanwhile.
func TestErasureCompletesDuringALongTransaction(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	org, other := ts.org, ts.newOrg(t, "Other")
	uc := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", org, `{"user_reference":"zelda-long","traits":{"name":"Zelda"}}`), http.StatusCreated)

	// As pg_dump does: one REPEATABLE READ snapshot, a lock on every table it read.
	dump, err := ts.Pool.BeginTx(context.Background(), pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer dump.Rollback(context.Background())
	var n int
	if err := dump.QueryRow(context.Background(), `SELECT count(*) FROM subject_keys`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("dump read %d keys (%v)", n, err)
	}

	erased := make(chan response, 1)
	go func() { erased <- ts.do(t, http.MethodDelete, "/api/v1/contexts/zelda-long", org, "") }()
	// Another organization writes contexts while the erasure runs.
	for i := range 3 {
		expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", other, `{"user_reference":"bob-`+strconvItoa(i)+`","traits":{"n":1}}`), http.StatusCreated)
	}
	var d map[string]any
	select {
	case r := <-erased:
		d = expectStatus(t, r, http.StatusOK)
	case <-time.After(60 * time.Second): // a hang detector, not a timing assertion
		t.Fatal("DELETE did not answer while a long transaction ran")
	}
	if d["id"] != uc["id"] {
		t.Fatalf("erase: %v", d)
	}
	var live int
	if err := ts.Pool.QueryRow(context.Background(), `SELECT count(*) FROM subject_keys WHERE subject = $1 AND secret IS NOT NULL`, uc["id"]).Scan(&live); err != nil || live != 0 {
		t.Fatalf("key still readable by new reads: %d (%v)", live, err)
	}
	if r := ts.do(t, http.MethodGet, "/api/v1/events?limit=100", org, ""); strings.Contains(string(r.Body), "Zelda") {
		t.Errorf("events show the person while the old transaction runs: %s", r.Body)
	}
	again := expectStatus(t, ts.do(t, http.MethodDelete, "/api/v1/contexts/"+uc["id"].(string), org, ""), http.StatusOK)
	if again["erased_at"] != d["erased_at"] {
		t.Errorf("retry: %v, first %v", again, d)
	}
	if err := dump.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Idempotency keys belong to who sent them: a widget visitor reusing the key
// of the server-side caller, or of another visitor, runs its own request.
func TestIdempotencyKeysArePerPrincipal(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	var runs atomic.Int32
	appendProbeEvent(ts, &runs, 0)
	server := ts.do(t, http.MethodPost, "/api/v1/probe-events", ts.org, `{"a":1}`, "Idempotency-Key", "shared")
	if server.Status != http.StatusCreated {
		t.Fatalf("server-side: %d %s", server.Status, server.Body)
	}
	visitor := func(token string) response {
		return ts.do(t, http.MethodPost, "/api/v1/probe-events", testOrg{}, `{"a":1}`, "Idempotency-Key", "shared", "Authorization", "Bearer "+token)
	}
	v1, v2 := widgetToken(t, ts, ts.org.ClientID), widgetToken(t, ts, ts.org.ClientID)
	first := visitor(v1)
	if first.Status != http.StatusCreated || first.Header.Get("Idempotent-Replayed") != "" || first.data(t)["id"] == server.data(t)["id"] {
		t.Fatalf("visitor got the server-side caller's response: %d %v %s", first.Status, first.Header, first.Body)
	}
	if r := visitor(v2); r.Status != http.StatusCreated || r.Header.Get("Idempotent-Replayed") != "" || r.data(t)["id"] == first.data(t)["id"] {
		t.Fatalf("a second visitor got the first one's response: %d %v %s", r.Status, r.Header, r.Body)
	}
	if r := visitor(v1); r.Header.Get("Idempotent-Replayed") != "true" || string(r.Body) != string(first.Body) {
		t.Fatalf("the visitor's own retry: %d %v %s", r.Status, r.Header, r.Body)
	}
	if r := ts.do(t, http.MethodPost, "/api/v1/probe-events", ts.org, `{"a":1}`, "Idempotency-Key", "shared"); r.Header.Get("Idempotent-Replayed") != "true" || string(r.Body) != string(server.Body) {
		t.Fatalf("the server-side caller's own retry: %d %v %s", r.Status, r.Header, r.Body)
	}
	if runs.Load() != 3 {
		t.Fatalf("ran %d times, want 3 (one per principal)", runs.Load())
	}
}

// Reservations made before stream names were keyed keep protecting their
// reference: a create merges into the holder, an erasure frees it, and
// every new event goes to the keyed stream.
func TestLegacyReservationsKeepProtectingUniqueness(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	org := ts.org
	ctx := es.WithMetadata(context.Background(), es.Metadata{OrganizationID: org.ID, Actor: "cli"})
	// What the earlier version wrote: the reservation under the unkeyed
	// name, then the context.
	id := uuid.New()
	legacy := usercontext.LegacyReferenceStream(org.ID, "old@example.org")
	if _, err := ts.Store.Append(ctx, legacy, es.NoStream, es.NewEvent{ID: uuid.New(), Type: usercontext.TypeReserved, SchemaVersion: 1,
		Data: json.RawMessage(`{"user_context_id":"` + id.String() + `"}`), Metadata: es.Metadata{OrganizationID: org.ID}}); err != nil {
		t.Fatal(err)
	}
	res, err := ts.Store.Append(ctx, "usercontext-"+id.String(), es.NoStream, es.NewEvent{ID: uuid.New(), Type: usercontext.TypeCreated, SchemaVersion: 1,
		Data:     json.RawMessage(`{"user_context_id":"` + id.String() + `","user_reference":"old@example.org","traits":{"plan":"old"},"created_at":"2026-11-20T10:00:00Z"}`),
		Metadata: es.Metadata{OrganizationID: org.ID, Subject: id.String(), Personal: []string{"user_reference", "traits"}}})
	if err != nil {
		t.Fatal(err)
	}
	ts.settle(t, res.Position)

	merged := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", org, `{"user_reference":"old@example.org","traits":{"plan":"new"}}`), http.StatusOK)
	if merged["id"] != id.String() {
		t.Fatalf("a create under a legacy reservation made another context: %v", merged)
	}
	expectStatus(t, ts.do(t, http.MethodDelete, "/api/v1/contexts/old@example.org", org, ""), http.StatusOK)
	fresh := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", org, `{"user_reference":"old@example.org"}`), http.StatusCreated)
	if fresh["id"] == id.String() {
		t.Fatal("the erased context came back")
	}
	if evs, err := ts.Store.ReadStream(context.Background(), legacy, 1, 0); err != nil || len(evs) != 1 {
		t.Errorf("the legacy stream must only be read: %d events (%v)", len(evs), err)
	}
	refs, err := secrets.NewReferenceKeys(ts.Pool).References(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	evs, err := ts.Store.ReadStream(context.Background(), refs.Stream(org.ID, "old@example.org"), 1, 0)
	if err != nil || len(evs) != 2 || evs[0].Type != usercontext.TypeReleased || evs[1].Type != usercontext.TypeReserved {
		t.Errorf("keyed stream: %+v (%v), want released then reserved", evs, err)
	}
}

// A context whose user_reference is another context's id: GET and DELETE by
// that string name the same context, the one with the id, erased or not.
func TestContextIDWinsOverAnEqualReference(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	org := ts.org
	a := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", org, `{"user_reference":"a","traits":{"who":"a"}}`), http.StatusCreated)
	aID := a["id"].(string)
	b := expectStatus(t, ts.do(t, http.MethodPost, "/api/v1/contexts/", org, `{"user_reference":"`+aID+`","traits":{"who":"b"}}`), http.StatusCreated)
	if got := expectStatus(t, ts.do(t, http.MethodGet, "/api/v1/contexts/"+aID, org, ""), http.StatusOK); got["id"] != aID {
		t.Fatalf("GET by a's id gave %v", got)
	}
	d := expectStatus(t, ts.do(t, http.MethodDelete, "/api/v1/contexts/"+aID, org, ""), http.StatusOK)
	if d["id"] != aID {
		t.Fatalf("DELETE by a's id erased %v", d)
	}
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/contexts/"+aID, org, ""), http.StatusNotFound)
	if again := expectStatus(t, ts.do(t, http.MethodDelete, "/api/v1/contexts/"+aID, org, ""), http.StatusOK); again["id"] != aID {
		t.Fatalf("retried DELETE by a's id: %v", again)
	}
	if got := expectStatus(t, ts.do(t, http.MethodGet, "/api/v1/contexts/"+b["id"].(string), org, ""), http.StatusOK); got["user_reference"] != aID {
		t.Fatalf("b must stay: %v", got)
	}
}
