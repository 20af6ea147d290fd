package projections_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/companin/companin/projections"
	"github.com/companin/companin/queries"
	"github.com/google/uuid"
)

func appendSource(t *testing.T, store es.Store, org uuid.UUID, s *knowledge.Source) {
	t.Helper()
	var evs []es.NewEvent
	for _, c := range s.Changes() {
		data, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, es.NewEvent{ID: uuid.New(), Type: c.EventType(), Data: data, Metadata: es.Metadata{OrganizationID: org.String()}})
	}
	if _, err := store.Append(context.Background(), "knowledge-"+s.ID().String(), es.Any, evs...); err != nil {
		t.Fatal(err)
	}
}

var _ domain.Event = knowledge.Added{}

func TestKnowledgeProjectionAndSearch(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := memory.New()
	org := uuid.New()
	now := time.Now()

	qa := knowledge.New(uuid.New())
	spec, err := knowledge.ParseQA(knowledge.Common{Tags: []string{"hours"}}, "What are your business hours?", "We are open Monday to Friday, 9 AM to 6 PM EST.")
	if err != nil {
		t.Fatal(err)
	}
	if err := qa.Put(spec, now); err != nil {
		t.Fatal(err)
	}
	appendSource(t, store, org, qa)

	doc := knowledge.New(uuid.New())
	fspec, err := knowledge.ParseFile(knowledge.Common{Title: "Router manual"}, "md", "manual.md", []byte("# Router\n\nx"))
	if err != nil {
		t.Fatal(err)
	}
	_ = doc.Put(fspec, now)
	_ = doc.CompleteIngestion(1, knowledge.Document{Blocks: []knowledge.Block{
		{Kind: knowledge.Heading, Level: 1, Text: "Router manual"},
		{Kind: knowledge.Heading, Level: 2, Text: "Resetting the password"},
		{Kind: knowledge.Paragraph, Text: "If you forgot the admin password, press and hold the reset button on the back for ten seconds."},
		{Kind: knowledge.Heading, Level: 2, Text: "Fehlerbehebung"},
		{Kind: knowledge.Paragraph, Text: "Wenn die Statusleuchte rot blinkt, ist keine Verbindung zum Internet vorhanden."},
	}}, "", now)
	appendSource(t, store, org, doc)

	if err := messaging.CatchUp(ctx, store, pool, projections.Knowledge{}); err != nil {
		t.Fatal(err)
	}
	search := queries.NewSearchKnowledgeHandler(pool)
	for _, c := range []struct{ q, want string }{
		{"When are you open?", "qa"},
		{"I forgot my pasword", "Resetting the password"},
		{"opening hours", "qa"},
	} {
		got, err := search.Handle(ctx, queries.SearchKnowledgeQuery{OrganizationID: org, Query: c.q, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			t.Errorf("%q: nothing found", c.q)
			continue
		}
		b, _ := json.MarshalIndent(got[0], "", " ")
		t.Logf("%q -> %s", c.q, b)
	}
}
