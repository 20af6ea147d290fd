package messaging_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
)

// inFlight counts a worker's handlers running at once, and the most seen.
type inFlight struct {
	mu        sync.Mutex
	now, peak int
}

func (f *inFlight) enter() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now++
	f.peak = max(f.peak, f.now)
}

func (f *inFlight) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now--
}

func (f *inFlight) get() (now, peak int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now, f.peak
}

// Each kind of worker has its own slots: replies run three at once while
// ingestion, left at the runtime's one, runs one at a time beside them and
// takes none of the replies' slots.
func TestWorkerConcurrencyIsSetPerWorker(t *testing.T) {
	pool, store := pgtest.NewPool(t), memory.New()
	release := make(chan struct{})
	replies, ingest := &inFlight{}, &inFlight{}
	rt := messaging.NewRuntime(store, pool, fast(messaging.WithWorkerConcurrency(1), messaging.WithConcurrencyOf("replies", 3))...)
	blocking := func(f *inFlight) messaging.WorkerFunc {
		return func(ctx context.Context, e es.Event) error {
			f.enter()
			defer f.leave()
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}
	}
	rt.AddWorker("replies", es.Filter{Types: []string{"Counted"}}, blocking(replies))
	rt.AddWorker("ingest", es.Filter{Types: []string{"SourceAdded"}}, blocking(ingest))
	start(t, rt)
	for _, s := range []string{"knowledge-1", "knowledge-2", "knowledge-3"} {
		appendOne(t, store, s, "SourceAdded")
	}
	appendN(t, store, 4, 1) // four conversations, one question each
	waitFor(t, 30*time.Second, "three replies and one ingestion at once", func() bool {
		r, _ := replies.get()
		i, _ := ingest.get()
		return r == 3 && i == 1
	})
	close(release)
	waitFor(t, 30*time.Second, "every job done", func() bool {
		st := jobStatus(t, pool, "replies")
		return st["done"] == 4 && jobStatus(t, pool, "ingest")["done"] == 3
	})
	if _, p := replies.get(); p != 3 {
		t.Fatalf("replies ran %d at once, want 3", p)
	}
	if _, p := ingest.get(); p != 1 {
		t.Fatalf("ingestion ran %d at once, want 1", p)
	}
}
