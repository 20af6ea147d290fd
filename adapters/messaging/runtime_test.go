package messaging_test

import (
	"context"
	"fmt"
	"github.com/companin/companin/adapters/eventstore/postgres"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"sync"
	"testing"
	"time"

	"github.com/companin/companin/adapters/messaging"
)

func TestCatchUpAppliesEveryEventOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		c := newCounter(t, pool, "counter")
		last := appendN(t, store, 3, 10)
		ctx := waitCtx(t, 30*time.Second)
		if err := messaging.CatchUp(ctx, store, pool, c); err != nil {
			t.Fatal(err)
		}
		if got := c.total(t, pool); got != 30 {
			t.Fatalf("read model holds %d events, want 30", got)
		}
		if got := checkpoint(t, pool, "counter"); got != last {
			t.Fatalf("checkpoint %q, want %q", got, last)
		}
		// Nothing new: a second catch-up applies nothing.
		before := c.applied.Load()
		if err := messaging.CatchUp(ctx, store, pool, c); err != nil {
			t.Fatal(err)
		}
		if c.applied.Load() != before || c.total(t, pool) != 30 {
			t.Fatalf("second catch-up applied events again")
		}
		want := "counter-0 10 1,2,3,4,5,6,7,8,9,10\ncounter-1 10 1,2,3,4,5,6,7,8,9,10\ncounter-2 10 1,2,3,4,5,6,7,8,9,10\n"
		if got := c.dump(t, pool); got != want {
			t.Fatalf("read model:\n%s\nwant:\n%s", got, want)
		}
	})
}

func TestRunFollowsTheLogAndWaitForProjections(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		a, b := newCounter(t, pool, "a"), newCounter(t, pool, "b")
		rt := messaging.NewRuntime(store, pool, messaging.WithLeadershipInterval(50*time.Millisecond))
		rt.AddProjection(a)
		rt.AddProjection(b)
		start(t, rt)
		ctx := waitCtx(t, 30*time.Second)
		for round := 1; round <= 3; round++ {
			pos := appendN(t, store, 2, 5)
			if err := rt.WaitForProjections(ctx, pos); err != nil {
				t.Fatal(err)
			}
			// Read-your-writes: right after the wait both read models hold the events.
			if got := a.total(t, pool); got != round*10 {
				t.Fatalf("round %d: a holds %d, want %d", round, got, round*10)
			}
			if got := b.total(t, pool); got != round*10 {
				t.Fatalf("round %d: b holds %d, want %d", round, got, round*10)
			}
		}
	})
}

// typed handles only the event types it declares, and notes the settings of
// the transaction it runs in.
type typed struct {
	*counter
	mu          sync.Mutex
	seen        []string
	idleTimeout string
}

func (p *typed) EventTypes() []string { return []string{"Counted"} }

func (p *typed) Handle(ctx context.Context, tx pgx.Tx, e es.Event) error {
	p.mu.Lock()
	p.seen = append(p.seen, e.Type)
	p.mu.Unlock()
	if err := tx.QueryRow(ctx, "SELECT current_setting('idle_in_transaction_session_timeout')").Scan(&p.idleTimeout); err != nil {
		return err
	}
	return p.counter.Handle(ctx, tx, e)
}

// A projection that declares its event types gets only those; its checkpoint
// still moves past the others, so WaitForProjections returns after an event
// it ignores. Its transactions are bounded by idle_in_transaction_session_timeout.
func TestTypedProjectionSkipsOtherEventsButItsCheckpointMoves(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		p := &typed{counter: newCounter(t, pool, "typed")}
		reg := prometheus.NewRegistry()
		rt := messaging.NewRuntime(store, pool, fast(messaging.WithIdleInTransactionTimeout(7*time.Second), messaging.WithRegisterer(reg))...)
		rt.AddProjection(p)
		rt.AddWorker("never-runs", es.Filter{Types: []string{"Nothing"}}, func(context.Context, es.Event) error { return nil })
		start(t, rt)
		ctx := waitCtx(t, 30*time.Second)
		appendOne(t, store, "other-1", "Ignored")
		appendN(t, store, 2, 2)
		pos := appendOne(t, store, "other-1", "Ignored")
		if err := rt.WaitForProjections(ctx, pos); err != nil {
			t.Fatal(err)
		}
		if got := checkpoint(t, pool, "typed"); got != pos {
			t.Fatalf("checkpoint %q, want %q (past the ignored events)", got, pos)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if fmt.Sprint(p.seen) != "[Counted Counted Counted Counted]" {
			t.Fatalf("Handle saw %v", p.seen)
		}
		if p.idleTimeout != "7s" {
			t.Fatalf("idle_in_transaction_session_timeout = %q", p.idleTimeout)
		}
		if got := eventuallyCounter(t, reg, "companin_consumer_processed_total", "typed", 4); got != 4 {
			t.Fatalf("processed_total = %v", got)
		}
	})
}

// On PostgreSQL an open transaction that holds an xid, anywhere on the server,
// hides later events from readers until it ends. CatchUp (with a HeadReader
// store) waits for them instead of returning with the read model short.
func TestCatchUpWaitsForEventsHeldBackByAnOlderTransaction(t *testing.T) {
	pool := pgtest.NewPool(t)
	pgStore, err := postgres.New(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pgStore.Close)
	store := headed{pgStore, pool}
	c := newCounter(t, pool, "patient")
	ctx := waitCtx(t, 30*time.Second)

	older, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer older.Rollback(ctx)
	if _, err := older.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil { // takes an xid
		t.Fatal(err)
	}
	last := appendN(t, store, 2, 3)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = older.Rollback(context.Background())
	}()
	began := time.Now()
	if err := messaging.CatchUp(ctx, store, pool, c); err != nil {
		t.Fatal(err)
	}
	if time.Since(began) < 250*time.Millisecond {
		t.Logf("CatchUp returned after %v: the older transaction did not hold the events back", time.Since(began))
	}
	if got := checkpoint(t, pool, "patient"); got != last {
		t.Fatalf("checkpoint %q, want %q", got, last)
	}
	if got, want := c.dump(t, pool), expectedDump(2, 3); got != want {
		t.Fatalf("read model:\n%s\nwant:\n%s", got, want)
	}
}
