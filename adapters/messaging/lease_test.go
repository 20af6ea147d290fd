package messaging_test

import (
	"context"
	"testing"
	"time"

	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A handler that runs for several leases keeps its job: its process renews
// the lease while it runs (heartbeat), so another process that is looking
// for work never takes it, and the job is done once, in one attempt. When
// the holder stops, the other process takes its next job over within about
// a lease.
func TestLongHandlerKeepsItsLeaseAndAStoppedHolderLosesIt(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		const lease = 300 * time.Millisecond
		opts := func() []messaging.Option {
			return fast(messaging.WithLease(lease), messaging.WithJobTimeout(time.Minute), messaging.WithWorkerConcurrency(1),
				messaging.WithJobBackoff(10*time.Millisecond, 50*time.Millisecond))
		}
		h := newHandled()
		entered := make(chan uuid.UUID, 10)
		release := make(chan struct{})
		rtA := messaging.NewRuntime(store, pool, opts()...)
		rtA.AddWorker("long", es.Filter{}, func(ctx context.Context, e es.Event) error {
			entered <- e.ID
			select {
			case <-release: // held for as long as the test wants: many leases
			case <-ctx.Done():
				return ctx.Err()
			}
			h.record("A", e)
			return nil
		})
		start(t, rtA)
		appendOne(t, store, "knowledge-1", "SourceAdded")
		select {
		case <-entered:
		case <-time.After(30 * time.Second):
			t.Fatal("A never got the job")
		}
		rtB := messaging.NewRuntime(store, pool, opts()...)
		rtB.AddWorker("long", es.Filter{}, func(ctx context.Context, e es.Event) error {
			h.record("B", e)
			return nil
		})
		start(t, rtB)
		// Ten leases: without renewal B would have taken the job long ago.
		time.Sleep(10 * lease)
		close(release)
		waitFor(t, 30*time.Second, "the job done", func() bool { return jobStatus(t, pool, "long")["done"] == 1 })
		var attempts int
		if err := pool.QueryRow(context.Background(), `SELECT attempts FROM consumer_jobs WHERE worker = 'long'`).Scan(&attempts); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		if attempts != 1 || h.by["A"] != 1 || h.by["B"] != 0 {
			h.mu.Unlock()
			t.Fatalf("attempts %d, handled by %v: the job was taken from a live holder", attempts, h.by)
		}
		h.mu.Unlock()
	})
}
