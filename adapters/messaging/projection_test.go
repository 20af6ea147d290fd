package messaging_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5/pgxpool"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/postgres"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

func expectedDump(streams, perStream int) string {
	var b strings.Builder
	for s := 0; s < streams; s++ {
		vs := make([]string, perStream)
		for i := range vs {
			vs[i] = fmt.Sprint(i + 1)
		}
		fmt.Fprintf(&b, "counter-%d %d %s\n", s, perStream, strings.Join(vs, ","))
	}
	return b.String()
}

func fast(opts ...messaging.Option) []messaging.Option {
	return append([]messaging.Option{
		messaging.WithLeadershipInterval(50 * time.Millisecond),
		messaging.WithRetry(2, 5*time.Millisecond, 50*time.Millisecond),
	}, opts...)
}

// A handler that fails after writing, a few times in a row: every failed
// attempt is rolled back, the event is retried (in-process retries, then
// redelivery), never skipped, and its effect lands exactly once.
func TestProjectionFailingMidwayIsAppliedExactlyOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		c := newCounter(t, pool, "flaky")
		var failures atomic.Int64
		var mu sync.Mutex
		failed := map[uint64]int{}
		c.fail = func(e es.Event) error {
			// Events 4 and 7 of counter-1 fail 5 times each: more than the 2
			// in-process retries, so they are nacked and redelivered too.
			if e.Stream != "counter-1" || (e.Version != 4 && e.Version != 7) {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			if failed[e.Version]++; failed[e.Version] <= 5 {
				failures.Add(1)
				return errors.New("injected failure after the write")
			}
			return nil
		}
		rt := messaging.NewRuntime(store, pool, fast()...)
		rt.AddProjection(c)
		start(t, rt)
		pos := appendN(t, store, 3, 10)
		if err := rt.WaitForProjections(waitCtx(t, 60*time.Second), pos); err != nil {
			t.Fatal(err)
		}
		if got, want := c.dump(t, pool), expectedDump(3, 10); got != want {
			t.Fatalf("read model:\n%s\nwant:\n%s", got, want)
		}
		if failures.Load() < 10 {
			t.Fatalf("only %d injected failures happened", failures.Load())
		}
	})
}

// The connection dies between the projection's writes and its commit (as when
// the process is killed): nothing of the event stays, it is applied again
// on a new connection, exactly once.
func TestProjectionConnectionKilledBeforeCommit(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		c := newCounter(t, pool, "killed")
		var kills atomic.Int64
		p := &killing{counter: c, kill: func(e es.Event) bool {
			return e.Version%3 == 0 && kills.Add(1) <= 4
		}}
		rt := messaging.NewRuntime(store, pool, fast()...)
		rt.AddProjection(p)
		start(t, rt)
		pos := appendN(t, store, 2, 8)
		if err := rt.WaitForProjections(waitCtx(t, 60*time.Second), pos); err != nil {
			t.Fatal(err)
		}
		if got, want := c.dump(t, pool), expectedDump(2, 8); got != want {
			t.Fatalf("read model:\n%s\nwant:\n%s", got, want)
		}
		if kills.Load() < 4 {
			t.Fatalf("only %d connections killed", kills.Load())
		}
		// A killed session is a transient failure: retried, never parked.
		if ds := parked(t, pool, ""); len(ds) != 0 {
			t.Fatalf("parked: %+v", ds)
		}
	})
}

// killing terminates its own database session after the write, before commit.
type killing struct {
	*counter
	kill func(es.Event) bool
}

func (k *killing) Handle(ctx context.Context, tx pgx.Tx, e es.Event) error {
	if err := k.counter.Handle(ctx, tx, e); err != nil {
		return err
	}
	if k.kill(e) {
		_, err := tx.Exec(ctx, "SELECT pg_terminate_backend(pg_backend_pid())")
		if err == nil {
			return errors.New("session survived pg_terminate_backend")
		}
		return err
	}
	return nil
}

// The process stops while an event is applied but not committed; a new
// process resumes from the checkpoint and applies it once.
func TestStopBetweenApplyAndCommitThenRestartResumes(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		appendN(t, store, 2, 5)
		first := newCounter(t, pool, "resumed")
		inside := make(chan struct{})
		var once atomic.Bool
		first.fail = func(e es.Event) error {
			if e.Stream == "counter-0" && e.Version == 4 && once.CompareAndSwap(false, true) {
				close(inside)
				// The process stops here: hold the transaction open until it does.
				time.Sleep(300 * time.Millisecond)
				return errors.New("process stopped")
			}
			return nil
		}
		rt1 := messaging.NewRuntime(store, pool, fast()...)
		rt1.AddProjection(first)
		run1 := start(t, rt1)
		<-inside
		run1.stop(t)
		// The events before counter-0 v4 are committed or not, depending on
		// how the runner batched them; what is committed is exactly what the
		// checkpoint says.
		cp := checkpoint(t, pool, "resumed")
		committed := first.total(t, pool)
		if committed > 6 {
			t.Fatalf("after stop the read model holds %d events, more than the 6 before the stopped one (checkpoint %s)", committed, cp)
		}

		// Restart with more events in the log: only what is after the checkpoint runs.
		pos := appendN(t, store, 2, 5)
		second := newCounter(t, pool, "resumed")
		rt2 := messaging.NewRuntime(store, pool, fast()...)
		rt2.AddProjection(second)
		start(t, rt2)
		if err := rt2.WaitForProjections(waitCtx(t, 30*time.Second), pos); err != nil {
			t.Fatal(err)
		}
		if got, want := second.dump(t, pool), expectedDump(2, 10); got != want {
			t.Fatalf("read model:\n%s\nwant:\n%s", got, want)
		}
		if got := second.applied.Load(); got != int64(20-committed) {
			t.Fatalf("restarted runtime applied %d events, want %d (those after the checkpoint)", got, 20-committed)
		}
	})
}

// With WithParkAfter(0), a projection that cannot handle an event (an
// unclassified error) stops there: it never skips it (later events wait),
// WaitForProjections times out, the error is recorded; once the cause is
// fixed, it continues, exactly once.
func TestPoisonEventStopsProjectionWithoutSkipping(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		c := newCounter(t, pool, "stuck")
		var broken atomic.Bool
		broken.Store(true)
		var attempts atomic.Int64
		c.fail = func(e es.Event) error {
			if e.Stream == "counter-0" && e.Version == 2 && broken.Load() {
				attempts.Add(1)
				return errors.New("cannot handle this event")
			}
			return nil
		}
		reg := prometheus.NewRegistry()
		rt := messaging.NewRuntime(store, pool, fast(messaging.WithRegisterer(reg), messaging.WithParkAfter(0))...)
		rt.AddProjection(c)
		start(t, rt)
		pos := appendN(t, store, 2, 3)
		err := rt.WaitForProjections(waitCtx(t, 1500*time.Millisecond), pos)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitForProjections = %v, want a deadline error while the projection is stuck", err)
		}
		if got := c.dump(t, pool); got != "counter-0 1 1\ncounter-1 1 1\n" {
			t.Fatalf("read model while stuck:\n%s", got)
		}
		var lastError *string
		if err := pool.QueryRow(context.Background(), `SELECT last_error FROM consumer_checkpoints WHERE name = 'stuck'`).Scan(&lastError); err != nil {
			t.Fatal(err)
		}
		if lastError == nil || !strings.Contains(*lastError, "cannot handle this event") {
			t.Fatalf("last_error = %v", lastError)
		}
		// 1 attempt + 2 router retries, then nacked and redelivered at least once.
		waitFor(t, 30*time.Second, "a redelivery", func() bool { return attempts.Load() >= 4 })
		broken.Store(false)
		if err := rt.WaitForProjections(waitCtx(t, 60*time.Second), pos); err != nil {
			t.Fatal(err)
		}
		if got, want := c.dump(t, pool), expectedDump(2, 3); got != want {
			t.Fatalf("read model:\n%s\nwant:\n%s", got, want)
		}
		// The counter moves just after the commit that WaitForProjections sees.
		waitFor(t, 10*time.Second, "processed_total to reach 6", func() bool {
			return counterValue(t, reg, "companin_consumer_processed_total", "stuck") >= 6
		})
		if got := counterValue(t, reg, "companin_consumer_processed_total", "stuck"); got != 6 {
			t.Fatalf("processed_total = %v, want 6 (each event once)", got)
		}
		if got := counterValue(t, reg, "companin_consumer_failures_total", "stuck"); got < 1 {
			t.Fatalf("failures_total = %v", got)
		}
	})
}

// eventuallyCounter waits up to 5 s for the metric to reach want and returns
// its last value (metrics are updated after the commits that waiters see).
func eventuallyCounter(t *testing.T, reg *prometheus.Registry, name, consumer string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, ok := metricValue(t, reg, name, consumer)
		if (ok && got == want) || time.Now().After(deadline) {
			if !ok {
				t.Fatalf("no metric %s{consumer=%q}", name, consumer)
			}
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, consumer string) float64 {
	t.Helper()
	v, ok := metricValue(t, reg, name, consumer)
	if !ok {
		t.Fatalf("no metric %s{consumer=%q}", name, consumer)
	}
	return v
}

func metricValue(t *testing.T, reg *prometheus.Registry, name, consumer string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "consumer" && l.GetValue() == consumer {
					if m.Counter != nil {
						return m.Counter.GetValue(), true
					}
					return m.Gauge.GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// Two runtimes on one database: the projection runs in only one of them; when
// that one stops, the other takes over from the checkpoint.
func TestProjectionRunsInOneRuntimeAndFailsOver(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		a, b := newCounter(t, pool, "led"), newCounter(t, pool, "led")
		rtA := messaging.NewRuntime(store, pool, fast()...)
		rtA.AddProjection(a)
		rtB := messaging.NewRuntime(store, pool, fast()...)
		rtB.AddProjection(b)
		runA := start(t, rtA)
		runB := start(t, rtB)
		pos := appendN(t, store, 3, 5)
		// B's wait learns of A's commits (or its own) by notification.
		if err := rtB.WaitForProjections(waitCtx(t, 30*time.Second), pos); err != nil {
			t.Fatal(err)
		}
		if (a.applied.Load() == 0) == (b.applied.Load() == 0) {
			t.Fatalf("applied by a: %d, by b: %d; want exactly one runtime applying", a.applied.Load(), b.applied.Load())
		}
		leader, follower, stopLeader, other := a, b, runA, rtB
		if b.applied.Load() > 0 {
			leader, follower, stopLeader, other = b, a, runB, rtA
		}
		stopLeader.stop(t)
		pos = appendN(t, store, 3, 5)
		if err := other.WaitForProjections(waitCtx(t, 30*time.Second), pos); err != nil {
			t.Fatal(err)
		}
		if got := follower.applied.Load(); got != 15 {
			t.Fatalf("the runtime that took over applied %d events, want the 15 new ones", got)
		}
		if got := leader.applied.Load(); got != 15 {
			t.Fatalf("the first leader applied %d events, want 15", got)
		}
		if got, want := a.dump(t, pool), expectedDump(3, 10); got != want {
			t.Fatalf("read model:\n%s\nwant:\n%s", got, want)
		}
	})
}

// A rebuild replays the log into emptied tables and gives the same read model,
// also while the live runtime keeps applying new events.
func TestRebuildGivesIdenticalResults(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		live := newCounter(t, pool, "rebuilt")
		rt := messaging.NewRuntime(store, pool, fast()...)
		rt.AddProjection(live)
		start(t, rt)
		ctx := waitCtx(t, 60*time.Second)
		pos := appendN(t, store, 4, 50)
		if err := rt.WaitForProjections(ctx, pos); err != nil {
			t.Fatal(err)
		}
		before := live.dump(t, pool)
		if before != expectedDump(4, 50) {
			t.Fatalf("read model before rebuild:\n%s", before)
		}

		// Rebuild while writers keep appending and the live runtime keeps running.
		done := make(chan es.Position)
		go func() {
			var last es.Position
			for i := 0; i < 20; i++ {
				last = appendN(t, store, 4, 1)
				time.Sleep(2 * time.Millisecond)
			}
			done <- last
		}()
		fresh := newCounter(t, pool, "rebuilt") // another instance: the CLI's
		// While the rebuild applies events, the live runner applies none.
		liveAtStart, concurrent := int64(-1), false
		fresh.fail = func(es.Event) error {
			if liveAtStart < 0 {
				liveAtStart = live.applied.Load()
			} else if live.applied.Load() != liveAtStart {
				concurrent = true
			}
			time.Sleep(time.Millisecond) // leave the live runner time to try
			return nil
		}
		if err := messaging.Rebuild(ctx, store, pool, []messaging.Projection{fresh}, "rebuilt"); err != nil {
			t.Fatal(err)
		}
		fresh.fail = nil
		if concurrent {
			t.Fatal("the live runner applied events while the rebuild ran")
		}
		pos = <-done
		if err := rt.WaitForProjections(ctx, pos); err != nil {
			t.Fatal(err)
		}
		if got, want := live.dump(t, pool), expectedDump(4, 70); got != want {
			t.Fatalf("read model after rebuild:\n%s\nwant:\n%s", got, want)
		}

		// And a plain rebuild, nothing running, compares equal to the dump before.
		if err := messaging.Rebuild(ctx, store, pool, []messaging.Projection{fresh}, ""); err != nil {
			t.Fatal(err)
		}
		if got := fresh.dump(t, pool); got != expectedDump(4, 70) {
			t.Fatalf("read model after second rebuild:\n%s", got)
		}
		if err := messaging.Rebuild(ctx, store, pool, []messaging.Projection{fresh}, "nope"); !errors.Is(err, messaging.ErrUnknownProjection) {
			t.Fatalf("Rebuild of an unknown name = %v", err)
		}
	})
}

// held is a projection of "Held" events that blocks in Handle until released.
type held struct{ release chan struct{} }

func (held) Name() string         { return "held" }
func (held) EventTypes() []string { return []string{"Held"} }
func (h held) Handle(ctx context.Context, _ pgx.Tx, _ es.Event) error {
	select {
	case <-h.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (held) Reset(context.Context, pgx.Tx) error { return nil }

// Read-your-writes for a write of given event types waits for the projections
// that show such events, not for one stuck on events of another type; without
// types it waits for every projection.
func TestWaitForProjectionsOfTypesSkipsProjectionsThatCannotShowThem(t *testing.T) {
	pool := pgtest.NewPool(t)
	store, err := postgres.New(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	c := newCounter(t, pool, "typed")
	h := held{release: make(chan struct{})}
	rt := messaging.NewRuntime(store, pool, fast()...)
	rt.AddProjection(c)
	rt.AddProjection(h)
	running := start(t, rt)
	t.Cleanup(func() { close(h.release); running.stop(t) })
	if _, err := store.Append(context.Background(), "held-1", es.Any, es.NewEvent{ID: uuid.New(), Type: "Held", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	pos := appendN(t, store, 2, 3)
	if err := rt.WaitForProjections(waitCtx(t, 60*time.Second), pos, "Counted"); err != nil {
		t.Fatalf("waiting for the projections of Counted: %v", err)
	}
	if got, want := c.dump(t, pool), expectedDump(2, 3); got != want {
		t.Fatalf("read model after the wait:\n%s\nwant:\n%s", got, want)
	}
	if err := rt.WaitForProjections(waitCtx(t, 300*time.Millisecond), pos); err == nil {
		t.Fatal("waiting for every projection returned while one is held")
	}
}
