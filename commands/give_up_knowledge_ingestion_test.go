package commands_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/adapters/extract"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/companin/companin/projections"
	"github.com/google/uuid"
)

// An ingestion job that keeps failing (here: every attempt errors, as when
// the store is unreachable for the worker) is parked after its attempts, and
// the source does not stay "processing": the worker's OnParked hook records
// the failure, and the read model shows the source failed with the reason.
func TestParkedIngestionJobLeavesTheSourceFailed(t *testing.T) {
	pool, store := pgtest.NewPool(t), memory.New()
	ctx := es.WithMetadata(context.Background(), es.Metadata{OrganizationID: uuid.NewString(), Actor: "test"})
	ingest := commands.IngestKnowledgeHandler{Store: store, Extract: extract.File, Fetch: noFetch{}}
	rt := messaging.NewRuntime(store, pool, messaging.WithLeadershipInterval(50*time.Millisecond),
		messaging.WithMaxAttempts(2), messaging.WithJobBackoff(10*time.Millisecond, 50*time.Millisecond))
	rt.AddProjection(projections.Knowledge{})
	rt.AddWorker("knowledge-ingestion", es.Filter{Types: knowledge.IngestionTriggers},
		func(context.Context, es.Event) error { return errors.New("the event store is unreachable") },
		messaging.OnParked(ingest.GiveUp))
	run(t, rt)

	src, err := addFile(ctx, store, knowledge.Common{Title: "Returns"}, "md", "r.md", []byte("# Returns\n\nWithin 30 days."))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var status, reason string
		err := pool.QueryRow(ctx, `SELECT status, error FROM knowledge_sources WHERE id = $1`, src.ID).Scan(&status, &reason)
		if err == nil && status == "failed" {
			if !strings.Contains(reason, "ingestion gave up") || !strings.Contains(reason, "the event store is unreachable") {
				t.Fatalf("reason: %s", reason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("source still %q (%v) a minute after its job kept failing", status, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := strings.Join(streamTypes(t, store, src.ID), ","); got != "KnowledgeAdded,KnowledgeIngestionFailed" {
		t.Fatalf("stream: %s", got)
	}
}
