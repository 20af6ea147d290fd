package commands_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/adapters/extract"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/google/uuid"
)

func streamTypes(t *testing.T, store es.Store, id uuid.UUID) []string {
	t.Helper()
	events, err := store.ReadStream(context.Background(), knowledge.Kind+"-"+id.String(), 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

type noFetch struct{}

func (noFetch) FetchPage(context.Context, string) (string, string, []byte, error) {
	return "", "", nil, errors.New("no network in this test")
}

// The worker is delivered each event at least once, possibly late: a
// redelivery or a result for a replaced revision records nothing.
func TestIngestionIsIdempotentAndIgnoresStaleRevisions(t *testing.T) {
	store := memory.New()
	org := uuid.New().String()
	ctx := es.WithMetadata(context.Background(), es.Metadata{OrganizationID: org, Actor: "test"})
	worker := commands.IngestKnowledgeHandler{Store: store, Extract: extract.File, Fetch: noFetch{}}
	common := knowledge.Common{Title: "Returns", ExternalID: "returns"}

	first, err := addFile(ctx, store, common, "md", "r.md", []byte("# Returns\n\nWithin 30 days."))
	if err != nil {
		t.Fatal(err)
	}
	triggers := func() []es.Event {
		evs, err := store.ReadAll(context.Background(), es.Start, 100, es.Filter{Types: knowledge.IngestionTriggers})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	added := triggers()[0]
	for range 2 {
		if err := worker.HandleEvent(context.Background(), added); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(streamTypes(t, store, first.ID), ","); got != "KnowledgeAdded,KnowledgeIngested" {
		t.Fatalf("after two deliveries: %s", got)
	}

	second, err := addFile(ctx, store, common, "md", "r.md", []byte("# Returns\n\nWithin 60 days."))
	if err != nil || second.ID != first.ID {
		t.Fatalf("upsert: %v %s %s", err, second.ID, first.ID)
	}
	_ = worker.HandleEvent(context.Background(), added) // late redelivery of revision 1
	if got := strings.Join(streamTypes(t, store, first.ID), ","); got != "KnowledgeAdded,KnowledgeIngested,KnowledgeReplaced" {
		t.Fatalf("a stale delivery recorded something: %s", got)
	}
	if err := worker.HandleEvent(context.Background(), triggers()[1]); err != nil {
		t.Fatal(err)
	}
	events, _ := store.ReadStream(context.Background(), knowledge.Kind+"-"+first.ID.String(), 4, 1)
	if len(events) != 1 || events[0].Type != knowledge.TypeIngested || !strings.Contains(string(events[0].Data), "60 days") {
		t.Fatalf("revision 2 not ingested: %v", events)
	}
	if events[0].Metadata.OrganizationID != org || events[0].Metadata.CausationID != triggers()[1].ID.String() {
		t.Errorf("metadata: %+v", events[0].Metadata)
	}

	corrupt, err := os.ReadFile(filepath.Join("..", "adapters", "extract", "testdata", "corrupt.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := addFile(ctx, store, knowledge.Common{Title: "Broken"}, "pdf", "b.pdf", corrupt)
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.HandleEvent(context.Background(), triggers()[2]); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(streamTypes(t, store, bad.ID), ","); got != "KnowledgeAdded,KnowledgeIngestionFailed" {
		t.Fatalf("corrupt file: %s", got)
	}
}
