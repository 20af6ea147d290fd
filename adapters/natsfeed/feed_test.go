package natsfeed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventjson"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/natsfeed"
	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestFeedPublishesEveryEventInLogOrderWithItsSubjectIDAndTheAPIShape(t *testing.T) {
	e := newEnv(t)
	orgA, orgB := newOrg(), newOrg()
	e.appendMany(t, 20, orgA, orgB)
	e.appendEvent(t, "platform", "PlatformNoted", "", map[string]string{"note": "no organization"}, es.Metadata{})
	person := e.appendEvent(t, "usercontext-1", "UserContextCreated", orgA,
		map[string]any{"user_reference": "zelda@example.com", "traits": map[string]string{"name": "Zelda Erasmus"}},
		es.Metadata{Subject: "usercontext-1", Personal: []string{"user_reference", "traits"}})
	e.appendMany(t, 10, orgB)

	f := e.newFeed(t, e.config())
	e.run(t, f)
	want := e.log(t)
	e.waitCaughtUp(t, f.Name(), want[len(want)-1].Position)
	e.assertExactlyTheLog(t, want)

	got := e.messages(t)
	for i, ev := range want {
		body, _ := json.Marshal(eventjson.From(ev))
		if !bytes.Equal(got[i].Data, body) {
			t.Fatalf("message of %s (%s):\n%s\nwant the API's JSON of the stored event:\n%s", ev.ID, ev.Type, got[i].Data, body)
		}
		if h := got[i].Header.Get(natsfeed.HeaderEventType); h != ev.Type {
			t.Errorf("event type header %q, want %q", h, ev.Type)
		}
	}

	// Personal fields stay sealed in the stream, while the API's store opens them.
	var m *jetstream.RawStreamMsg
	for _, msg := range got {
		if msg.Header.Get(nats.MsgIdHdr) == person.ID.String() {
			m = msg
		}
	}
	if m == nil {
		t.Fatal("the personal event is not in the stream")
	}
	if bytes.Contains(m.Data, []byte("zelda")) || bytes.Contains(m.Data, []byte("Zelda")) {
		t.Fatalf("personal data in the clear in the stream: %s", m.Data)
	}
	var published eventjson.Event
	if err := json.Unmarshal(m.Data, &published); err != nil {
		t.Fatal(err)
	}
	var fields map[string]map[string]any
	if err := json.Unmarshal(published.Data, &fields); err != nil {
		t.Fatalf("data %s: %v", published.Data, err)
	}
	for _, name := range []string{"user_reference", "traits"} {
		if enc, _ := fields[name]["$enc"].(string); !strings.HasPrefix(enc, "v1:") {
			t.Errorf("%s in the stream is %v, want it sealed as {\"$enc\":\"v1:...\"}", name, fields[name])
		}
	}
	if published.Metadata.Subject != "usercontext-1" || len(published.Metadata.Personal) != 2 {
		t.Errorf("metadata %+v should say whose key seals which fields", published.Metadata)
	}
	opened, err := e.store.ReadStream(context.Background(), "usercontext-1", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(opened[0].Data, []byte("Zelda Erasmus")) {
		t.Fatalf("the API's store should read the traits in the clear: %s", opened[0].Data)
	}
}

// Events written before a field became personal hold it in the clear: the
// feed withholds it (null), as the API does once the person is erased.
func TestFeedWithholdsPersonalFieldsTheLogHoldsInTheClear(t *testing.T) {
	e := newEnv(t)
	org := newOrg()
	legacy := e.appendEvent(t, "conversation-1", "ConversationStarted", org,
		map[string]any{"customer_id": "cust-7", "title": "Zelda's complaint", "metadata": map[string]string{"email": "zelda@example.com"}, "locale": "en"},
		es.Metadata{Subject: "usercontext-7", Personal: []string{"customer_id"}})
	anonymous := e.appendEvent(t, "conversation-2", "ConversationStarted", org,
		map[string]any{"customer_id": "cust-8", "title": "No person linked"}, es.Metadata{})
	cfg := e.config()
	cfg.Personal = map[string][]string{"ConversationStarted": {"customer_id", "title", "metadata"}}
	f := e.newFeed(t, cfg)
	e.run(t, f)
	log := e.log(t)
	e.waitCaughtUp(t, f.Name(), log[len(log)-1].Position)
	e.assertExactlyTheLog(t, log)

	got := map[string]eventjson.Event{}
	for _, m := range e.messages(t) {
		var ev eventjson.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		got[ev.ID.String()] = ev
		if bytes.Contains(m.Data, []byte("Zelda")) || bytes.Contains(m.Data, []byte("zelda")) {
			t.Errorf("personal data in the clear in the stream: %s", m.Data)
		}
	}
	var data map[string]json.RawMessage
	ev := got[legacy.ID.String()]
	if err := json.Unmarshal(ev.Data, &data); err != nil {
		t.Fatal(err)
	}
	if string(data["title"]) != "null" || string(data["metadata"]) != "null" || string(data["locale"]) != `"en"` || !bytes.Contains(data["customer_id"], []byte(`"$enc"`)) {
		t.Errorf("legacy event published as %s: want title and metadata null, customer_id sealed, locale kept", ev.Data)
	}
	if w := ev.Metadata.Extra[natsfeed.Withheld]; w != "title,metadata" {
		t.Errorf("metadata.extra.withheld %q, want \"title,metadata\"", w)
	}
	if d := string(got[anonymous.ID.String()].Data); !strings.Contains(d, "No person linked") {
		t.Errorf("an event of no person lost its data: %s", d)
	}
}

func TestFeedAfterACrashPublishesTheRestAndNothingTwice(t *testing.T) {
	e := newEnv(t)
	org := newOrg()
	cfg := e.config()
	// A window so short that only reading the stream's end can prevent duplicates.
	cfg.DuplicateWindow = time.Second
	e.appendMany(t, 30, org)
	first := e.newFeed(t, cfg)
	stop := e.run(t, first)
	log := e.log(t)
	e.waitCaughtUp(t, first.Name(), log[len(log)-1].Position)
	stop()

	// The process died after publishing events 11-30 but before their
	// checkpoints committed: the checkpoint is back at event 10.
	setCheckpoint(t, e, first.Name(), log[9].Position)
	time.Sleep(cfg.DuplicateWindow + 500*time.Millisecond) // the broker has forgotten the message ids
	e.appendMany(t, 20, org)
	second := e.newFeed(t, cfg)
	stop = e.run(t, second)
	log = e.log(t)
	e.waitCaughtUp(t, second.Name(), log[len(log)-1].Position)
	stop()
	e.assertExactlyTheLog(t, log)

	// A leader that has not noticed it lost the lock still believes the
	// stream ends at message 30: its publish must fail, not land twice.
	setCheckpoint(t, e, first.Name(), log[44].Position)
	e.appendMany(t, 5, org)
	log = e.log(t)
	err := messaging.CatchUp(context.Background(), e.raw, e.pool, first)
	if err == nil || !strings.Contains(err.Error(), "wrong last sequence") {
		t.Fatalf("a stale leader's publish: %v, want JetStream's wrong last sequence", err)
	}
	if err := messaging.CatchUp(context.Background(), e.raw, e.pool, first); err != nil {
		t.Fatalf("after reading the stream's end again: %v", err)
	}
	e.assertExactlyTheLog(t, log)
}

func setCheckpoint(t *testing.T, e *env, name string, pos es.Position) {
	t.Helper()
	if _, err := e.pool.Exec(context.Background(), `UPDATE consumer_checkpoints SET position = $2 WHERE name = $1`, name, string(pos)); err != nil {
		t.Fatal(err)
	}
}

func TestFeedParksAnEventItCannotPublishAndGoesOn(t *testing.T) {
	e := newEnv(t)
	org := newOrg()
	e.appendMany(t, 3, org)
	bad := e.appendEvent(t, "thing-bad", "AssistantCreated", "acme corp.eu", map[string]int{"i": 1}, es.Metadata{})
	e.appendMany(t, 3, org)
	f := e.newFeed(t, e.config())
	e.run(t, f)
	log := e.log(t)
	e.waitCaughtUp(t, f.Name(), log[len(log)-1].Position)

	var rest []es.Event
	for _, ev := range log {
		if ev.ID != bad.ID {
			rest = append(rest, ev)
		}
	}
	e.assertExactlyTheLog(t, rest)
	var reason, pos string
	err := e.pool.QueryRow(context.Background(), `SELECT reason, position FROM feed_parked WHERE feed = $1 AND event_id = $2`, f.Name(), bad.ID).Scan(&reason, &pos)
	if err != nil {
		t.Fatalf("parked event: %v", err)
	}
	if !strings.Contains(reason, "acme corp.eu") || !strings.Contains(reason, "subject token") || pos != string(bad.Position) {
		t.Errorf("parked at %q because %q", pos, reason)
	}
}

func TestFeedPublishesAnEventTooLargeForTheServerWithoutItsData(t *testing.T) {
	e := newEnv(t)
	org := newOrg()
	big := e.appendEvent(t, "knowledge-1", "KnowledgeIngested", org, map[string]string{"text": strings.Repeat("word ", 260_000)}, es.Metadata{})
	e.appendMany(t, 2, org)
	f := e.newFeed(t, e.config())
	e.run(t, f)
	log := e.log(t)
	e.waitCaughtUp(t, f.Name(), log[len(log)-1].Position)
	e.assertExactlyTheLog(t, log)

	m := e.messages(t)[0]
	var got eventjson.Event
	if err := json.Unmarshal(m.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != big.ID || string(got.Data) != "null" {
		t.Fatalf("large event published as %s with data %.80s, want data null", got.ID, got.Data)
	}
	if why := m.Header.Get(natsfeed.HeaderDataOmitted); !strings.Contains(why, "/api/v1/events?stream=knowledge-1") {
		t.Errorf("%s header %q should say where to read the event", natsfeed.HeaderDataOmitted, why)
	}
}

func TestFeedRetriesWhileNATSIsDownAndLosesNothing(t *testing.T) {
	e := newEnv(t)
	addr := freeAddr(t)
	cfg := e.config()
	cfg.URL = "nats://" + addr
	cfg.PublishTimeout = time.Second
	org := newOrg()
	e.appendMany(t, 10, org)
	f := e.newFeed(t, cfg)
	e.run(t, f)

	// Nothing listens: the feed fails, says why, and does not move.
	deadline := time.Now().Add(time.Minute)
	for {
		var pos string
		var lastErr *string
		err := e.pool.QueryRow(context.Background(), `SELECT position, last_error FROM consumer_checkpoints WHERE name = $1`, f.Name()).Scan(&pos, &lastErr)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if pos != "" {
			t.Fatalf("checkpoint moved to %q with no NATS server", pos)
		}
		if lastErr != nil {
			t.Logf("while NATS is down: %s", *lastErr)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no failure recorded while NATS is down")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The server comes: every event is published, once, in order.
	startNATS(t, addr)
	e.appendMany(t, 5, org)
	log := e.log(t)
	e.waitCaughtUp(t, f.Name(), log[len(log)-1].Position)
	nc, err := nats.Connect(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	e.js, _ = jetstream.New(nc)
	e.assertExactlyTheLog(t, log)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startNATS runs a NATS server of the test's own, with JetStream, on addr.
func startNATS(t *testing.T, addr string) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		bin = "/usr/sbin/nats-server"
	}
	host, port, _ := net.SplitHostPort(addr)
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-a", host, "-p", port, "-js", "-sd", t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s (install Debian's nats-server): %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("nats-server:\n%s", out.String())
		}
	})
}
