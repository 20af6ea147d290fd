package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/companin/companin/domain/thread"
	"github.com/companin/companin/projections"
	"github.com/google/uuid"
)

// The reproductions of issue 10, on the real projections and the live
// runtime. A user context whose traits hold a NUL character and a message with
// a NUL in its content used to be accepted (sealed, the append could not see
// the NUL) and then stopped their projections with 22P05: the append now
// refuses them. A document whose extracted text was cut inside a multi-byte
// character (22021) still reaches the log and fails only in the projection: it
// is parked, its source marked failed with the reason, and another
// organization's later writes reach the read models. A rebuild parks the same
// event.
func TestPoisonEventsOfOneOrganizationAreParkedAndOthersGoOn(t *testing.T) {
	ctx, store, pool := setup(t)
	orgA := uuid.NewString()
	orgB := uuid.NewString()
	ctxA := es.WithMetadata(context.Background(), es.Metadata{OrganizationID: orgA, Actor: "api_key:a"})
	ctxB := es.WithMetadata(context.Background(), es.Metadata{OrganizationID: orgB, Actor: "api_key:b"})

	ps := []messaging.Projection{projections.Conversations{}, projections.UserContexts{}, projections.Knowledge{}}
	rt := messaging.NewRuntime(store, pool, messaging.WithLeadershipInterval(50*time.Millisecond),
		messaging.WithRetry(1, 5*time.Millisecond, 50*time.Millisecond))
	for _, p := range ps {
		rt.AddProjection(p)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(runCtx) }()
	var stopped sync.Once
	stopRuntime := func() { stopped.Do(func() { cancel(); <-done }) }
	t.Cleanup(stopRuntime)

	// Organization A: the NUL writes of issue 10 no longer reach the log
	// (every append refuses text PostgreSQL cannot store, before sealing),
	// so the poison that remains is one the append cannot see: extracted
	// text whose chunk offsets cut a character, which fails only in the
	// projection.
	_, err := commands.SaveUserContextHandler{Store: store}.Handle(ctxA, commands.SaveUserContext{
		UserReference: "nul-user", Traits: map[string]any{"x": "a\u0000b"}})
	if !errors.Is(err, es.ErrInvalidText) {
		t.Fatalf("a NUL in sealed traits: %v, want es.ErrInvalidText", err)
	}
	a, err := commands.New(commands.Deps{Store: store}).CreateAssistant.Handle(ctxA, commands.CreateAssistant{Input: assistant.Input{Name: str("Support")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (commands.SaveUserContextHandler{Store: store}).Handle(ctxA, commands.SaveUserContext{UserReference: "linked"}); err != nil {
		t.Fatal(err)
	}
	s, err := commands.StartThreadHandler{Store: store}.Handle(ctxA, commands.StartThread{Kind: thread.Conversation,
		AssistantID: a.ID, CustomerID: "c-1", UserContext: "linked"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (commands.PostMessageHandler{Store: store}).Handle(ctxA, commands.PostMessage{Kind: thread.Conversation, ThreadID: s.ID, Content: "pwn\u0000"}); !errors.Is(err, es.ErrInvalidText) {
		t.Fatalf("a NUL in a sealed message: %v, want es.ErrInvalidText", err)
	}
	source := uuid.New()
	stream := commands.StreamName(knowledge.Kind, source)
	added, _ := json.Marshal(map[string]any{"knowledge_id": source, "revision": 1, "kind": "file", "title": "Walden",
		"file_type": "txt", "tags": []string{}, "assistant_ids": []string{}, "added_at": time.Now().UTC()})
	// "Caf" and the first byte of "é": a chunk cut inside a character.
	ingested, _ := json.Marshal(map[string]any{"knowledge_id": source, "revision": 1, "language": "fr", "text": "Café au lait",
		"chunks": []map[string]any{{"index": 0, "start": 0, "end": 4, "title_path": []string{}}}, "ingested_at": time.Now().UTC()})
	if _, err := store.Append(ctxA, stream, es.NoStream,
		es.NewEvent{ID: uuid.New(), Type: knowledge.TypeAdded, Data: added, Metadata: es.Metadata{OrganizationID: orgA}},
		es.NewEvent{ID: uuid.New(), Type: knowledge.TypeIngested, Data: ingested, Metadata: es.Metadata{OrganizationID: orgA}}); err != nil {
		t.Fatal(err)
	}

	// Organization B, afterwards: its writes reach the read models.
	good, err := commands.SaveUserContextHandler{Store: store}.Handle(ctxB, commands.SaveUserContext{
		UserReference: "fine-user", Traits: map[string]any{"plan": "pro"}})
	if err != nil {
		t.Fatal(err)
	}
	wait, stop := context.WithTimeout(context.Background(), 60*time.Second)
	defer stop()
	if err := rt.WaitForProjections(wait, good.Written.Position); err != nil {
		t.Fatalf("organization B's write never reached the read models: %v", err)
	}
	var traits string
	if err := pool.QueryRow(ctx, `SELECT traits::text FROM user_contexts WHERE id = $1`, good.Written.ID).Scan(&traits); err != nil {
		t.Fatal(err)
	}
	if traits != `{"plan": "pro"}` {
		t.Fatalf("organization B's traits = %s", traits)
	}

	check := func(when string) {
		t.Helper()
		ds, err := messaging.Parked(ctx, pool, "")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, d := range ds {
			if d.OrganizationID != orgA {
				t.Fatalf("%s: parked an event of another organization: %+v", when, d)
			}
			got[d.Consumer+" "+d.EventType] = d.Reason
		}
		for key, code := range map[string]string{
			"knowledge KnowledgeIngested": "22021",
		} {
			reason, ok := got[key]
			if !ok || !strings.Contains(reason, code) {
				t.Fatalf("%s: %s not parked with %s: %v", when, key, code, got)
			}
		}
		if len(got) != 1 {
			t.Fatalf("%s: parked %v", when, got)
		}
		var status, reason string
		if err := pool.QueryRow(ctx, `SELECT status, error FROM knowledge_sources WHERE id = $1`, source).Scan(&status, &reason); err != nil {
			t.Fatal(err)
		}
		if status != "failed" || !strings.Contains(reason, "could not be indexed") || !strings.Contains(reason, "22021") {
			t.Fatalf("%s: source %s: %s", when, status, reason)
		}
		degraded := map[uuid.UUID]string{}
		rows, err := pool.Query(ctx, `SELECT entity_id, kind FROM degraded_entities WHERE organization_id = $1`, orgA)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id uuid.UUID
			var kind string
			if err := rows.Scan(&id, &kind); err != nil {
				t.Fatal(err)
			}
			degraded[id] = kind
		}
		rows.Close()
		if len(degraded) != 0 {
			t.Fatalf("%s: degraded %v", when, degraded)
		}
	}
	check("live")

	// Stop the live runner, then rebuild: it parks the same events and marks
	// the same entities again.
	stopRuntime()
	if err := messaging.Rebuild(context.Background(), store, pool, ps, ""); err != nil {
		t.Fatalf("rebuild stopped: %v", err)
	}
	check("after rebuild")
	if err := pool.QueryRow(ctx, `SELECT traits::text FROM user_contexts WHERE id = $1`, good.Written.ID).Scan(&traits); err != nil || traits != `{"plan": "pro"}` {
		t.Fatalf("organization B's traits after rebuild = %s, %v", traits, err)
	}
}
