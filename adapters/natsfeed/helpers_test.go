package natsfeed_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/postgres"
	"github.com/companin/companin/adapters/eventstore/shred"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/natsfeed"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// These tests run against the real NATS server of the machine (JetStream on),
// COMPANIN_TEST_NATS_URL or nats://127.0.0.1:4222 (.ci/run starts it), and a
// real PostgreSQL. Each test has a stream and subject prefix of its own and
// deletes its stream at the end.

func natsURL() string {
	if u := os.Getenv("COMPANIN_TEST_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

type env struct {
	pool   *pgxpool.Pool
	raw    *postgres.Store // the log as stored: personal fields sealed
	store  *shred.Store    // the log as the API reads it
	stream string
	prefix string
	nc     *nats.Conn
	js     jetstream.JetStream
	// last is the position of the last event appended.
	last es.Position
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	raw, err := postgres.New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(raw.Close)
	keys, err := shred.NewPostgresKeys(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	nc, err := nats.Connect(natsURL(), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("no NATS server at %s (%v): start one with JetStream, e.g. nats-server -a 127.0.0.1 -p 4222 -js (.ci/run does)", natsURL(), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{pool: pool, raw: raw, store: shred.New(raw, keys), stream: "TEST_FEED_" + id, prefix: "companintest." + id + ".events", nc: nc, js: js}
	t.Cleanup(func() {
		if err := js.DeleteStream(context.Background(), e.stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Logf("delete stream %s: %v", e.stream, err)
		}
		nc.Close()
	})
	return e
}

func (e *env) config() natsfeed.Config {
	return natsfeed.Config{URL: natsURL(), Stream: e.stream, SubjectPrefix: e.prefix, PublishTimeout: 5 * time.Second}
}

func (e *env) newFeed(t testing.TB, cfg natsfeed.Config) *natsfeed.Feed {
	t.Helper()
	f, err := natsfeed.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// run runs f under a consumer runtime, as serve does, until stop is called
// or the test ends.
func (e *env) run(t testing.TB, f *natsfeed.Feed) (stop func()) {
	t.Helper()
	rt := messaging.NewRuntime(e.raw, e.pool, messaging.WithLeadershipInterval(100*time.Millisecond),
		messaging.WithRetry(2, 50*time.Millisecond, 2*time.Second))
	rt.AddProjection(f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("runtime: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("runtime did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

// appendEvent appends one event through the crypto-shredding store, as the
// commands do.
func (e *env) appendEvent(t testing.TB, stream, typ, org string, data any, md es.Metadata) es.Event {
	t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	md.OrganizationID = org
	id := uuid.New()
	res, err := e.store.Append(context.Background(), stream, es.Any, es.NewEvent{ID: id, Type: typ, SchemaVersion: 1, Data: b, Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	if res.Position.After(e.last) {
		e.last = res.Position
	}
	return es.Event{ID: id, Stream: stream, Type: typ, Position: res.Position}
}

// appendMany appends n events of two organizations and three types.
func (e *env) appendMany(t testing.TB, n int, orgs ...string) {
	t.Helper()
	types := []string{"AssistantCreated", "SessionStarted", "MessagePosted"}
	for i := 0; i < n; i++ {
		org := orgs[i%len(orgs)]
		e.appendEvent(t, fmt.Sprintf("thing-%s-%d", org[:8], i%7), types[i%len(types)], org, map[string]int{"i": i}, es.Metadata{})
	}
}

// log reads the whole log as stored, in order, once the last event
// appended is visible (the PostgreSQL log shows an event once every older
// transaction on the server has ended, other tests' included).
func (e *env) log(t testing.TB) []es.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var all []es.Event
	pos := es.Start
	for {
		page, err := e.raw.ReadAll(ctx, pos, 1000, es.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) > 0 {
			pos = page[len(page)-1].Position
			continue
		}
		if !e.last.After(pos) {
			return all
		}
		if err := e.raw.WaitForEvents(ctx, pos); err != nil {
			t.Fatalf("the log never showed the last event appended (%s): %v", e.last, err)
		}
	}
}

// waitCaughtUp waits until the feed's checkpoint is at the last event of the
// log as it is now (events may reach readers late: other tests' transactions).
func (e *env) waitCaughtUp(t testing.TB, name string, last es.Position) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var pos string
		err := e.pool.QueryRow(context.Background(), `SELECT position FROM consumer_checkpoints WHERE name = $1`, name).Scan(&pos)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if !last.After(es.Position(pos)) {
			return
		}
		if time.Now().After(deadline) {
			var lastErr *string
			_ = e.pool.QueryRow(context.Background(), `SELECT last_error FROM consumer_checkpoints WHERE name = $1`, name).Scan(&lastErr)
			t.Fatalf("feed checkpoint at %q, never reached %q (last error: %v)", pos, last, deref(lastErr))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// messages reads every message of the stream, in stream order.
func (e *env) messages(t testing.TB) []*jetstream.RawStreamMsg {
	t.Helper()
	return streamMessages(t, e.js, e.stream)
}

func streamMessages(t testing.TB, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// assertExactlyTheLog checks that the stream holds each event of want once,
// in log order, with its subject, id and the API's JSON.
func (e *env) assertExactlyTheLog(t testing.TB, want []es.Event) {
	t.Helper()
	got := e.messages(t)
	ids := make([]string, len(got))
	for i, m := range got {
		ids[i] = m.Header.Get(nats.MsgIdHdr)
	}
	if len(got) != len(want) {
		t.Fatalf("stream has %d messages, the log %d events", len(got), len(want))
	}
	for i, ev := range want {
		m := got[i]
		if ids[i] != ev.ID.String() {
			t.Fatalf("message %d is event %s, want %s (%s at %s): stream order %v", i+1, ids[i], ev.ID, ev.Type, ev.Position, ids)
		}
		org := ev.Metadata.OrganizationID
		if org == "" {
			org = "none"
		}
		if subj := e.prefix + "." + org + "." + ev.Type; m.Subject != subj {
			t.Errorf("event %s on %q, want %q", ev.ID, m.Subject, subj)
		}
		if p := m.Header.Get(natsfeed.HeaderPosition); p != string(ev.Position) {
			t.Errorf("event %s: position header %q, want %q", ev.ID, p, ev.Position)
		}
	}
	if t.Failed() {
		return
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("event %s twice in the stream", id)
		}
		seen[id] = true
	}
}

func newOrg() string { return uuid.NewString() }
