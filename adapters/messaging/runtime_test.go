package messaging_test

import (
	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5/pgxpool"
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
