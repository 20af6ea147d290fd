package messaging_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// handled records what a worker did, across runtimes.
type handled struct {
	mu    sync.Mutex
	count map[uuid.UUID]int
	by    map[string]int
	order map[string][]uint64 // per stream, versions in the order they were handled
}

func newHandled() *handled {
	return &handled{count: map[uuid.UUID]int{}, by: map[string]int{}, order: map[string][]uint64{}}
}

func (h *handled) record(who string, e es.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.count[e.ID]++
	h.by[who]++
	h.order[e.Stream] = append(h.order[e.Stream], e.Version)
}

func jobStatus(t *testing.T, pool *pgxpool.Pool, worker string) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT status, count(*) FROM consumer_jobs WHERE worker = $1 GROUP BY status`, worker)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		out[s] = n
	}
	return out
}

// waitFor waits until cond holds, checking whenever the jobs table may have
// changed; tests only.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two runtimes share a worker: every event is handled exactly once (no
// failures here, so at-least-once delivery means once), each stream in order.
func TestWorkerSharedByTwoRuntimesHandlesEachEventOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		h := newHandled()
		for _, who := range []string{"A", "B"} {
			rt := messaging.NewRuntime(store, pool, fast(messaging.WithWorkerConcurrency(2))...)
			rt.AddWorker("replies", es.Filter{Types: []string{"Counted"}}, func(ctx context.Context, e es.Event) error {
				if m := es.MetadataFrom(ctx); m.CausationID != e.ID.String() || m.Actor != "system:replies" {
					return fmt.Errorf("handler context metadata %+v", m)
				}
				time.Sleep(5 * time.Millisecond) // an LLM call, shortened
				h.record(who, e)
				return nil
			})
			start(t, rt)
		}
		appendOne(t, store, "other-1", "Ignored") // not for this worker
		appendN(t, store, 5, 12)
		waitFor(t, 60*time.Second, "60 jobs done", func() bool { return jobStatus(t, pool, "replies")["done"] == 60 })
		time.Sleep(100 * time.Millisecond) // a duplicate, if any, would show now
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.count) != 60 {
			t.Fatalf("handled %d distinct events, want 60", len(h.count))
		}
		for id, n := range h.count {
			if n != 1 {
				t.Fatalf("event %s handled %d times", id, n)
			}
		}
		for s, vs := range h.order {
			for i, v := range vs {
				if v != uint64(i+1) {
					t.Fatalf("stream %s handled in order %v", s, vs)
				}
			}
		}
		t.Logf("handled by runtime: %v", h.by)
		if st := jobStatus(t, pool, "replies"); st["pending"] != 0 || st["failed"] != 0 {
			t.Fatalf("jobs: %v", st)
		}
	})
}

// A handler that hangs past its lease (a process that froze, or died) loses
// the job: another runtime takes it over once the lease expires.
func TestWorkerLeaseExpiryIsTakenOverByAnotherRuntime(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		const lease = 600 * time.Millisecond
		hung := make(chan struct{})
		entered := make(chan uuid.UUID, 1)
		h := newHandled()
		rtA := messaging.NewRuntime(store, pool, fast(messaging.WithLease(lease), messaging.WithWorkerConcurrency(1))...)
		rtA.AddWorker("ingest", es.Filter{}, func(ctx context.Context, e es.Event) error {
			entered <- e.ID
			<-hung // ignores its context: hangs for good
			return nil
		})
		start(t, rtA)
		t.Cleanup(func() { close(hung) }) // runs before the runtimes stop
		appendOne(t, store, "knowledge-1", "SourceAdded")
		var id uuid.UUID
		select {
		case id = <-entered:
		case <-time.After(30 * time.Second):
			t.Fatal("runtime A never got the job")
		}
		began := time.Now()

		rtB := messaging.NewRuntime(store, pool, fast(messaging.WithLease(lease))...)
		rtB.AddWorker("ingest", es.Filter{}, func(ctx context.Context, e es.Event) error {
			h.record("B", e)
			return nil
		})
		start(t, rtB)
		waitFor(t, 30*time.Second, "B to do the job", func() bool { return jobStatus(t, pool, "ingest")["done"] == 1 })
		if took := time.Since(began); took < lease/2 {
			t.Fatalf("B took the job after %v, before A's lease (%v) ran out", took, lease)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.count[id] != 1 || h.by["B"] != 1 {
			t.Fatalf("B handled %v", h.count)
		}
		var attempts int
		if err := pool.QueryRow(context.Background(), `SELECT attempts FROM consumer_jobs WHERE event_id = $1`, id).Scan(&attempts); err != nil {
			t.Fatal(err)
		}
		if attempts != 2 {
			t.Fatalf("attempts = %d, want 2 (A's expired lease, then B)", attempts)
		}
	})
}

// A job that always fails is retried with backoff and parked as failed after
// the maximum attempts, with its error. It holds back only the later events
// of its own stream (they run after it is parked, in order); other streams
// are not blocked at all.
func TestPoisonJobIsParkedAndDoesNotBlockOtherStreams(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		h := newHandled()
		var mu sync.Mutex
		var parkedSeenAt time.Time
		rt := messaging.NewRuntime(store, pool, fast(
			messaging.WithMaxAttempts(3),
			messaging.WithJobBackoff(150*time.Millisecond, time.Second),
		)...)
		rt.AddWorker("answers", es.Filter{}, func(ctx context.Context, e es.Event) error {
			if e.Stream == "conversation-bad" && e.Version == 1 {
				return errors.New("this message makes the model crash")
			}
			if e.Stream == "conversation-bad" {
				var status string
				if err := pool.QueryRow(ctx, `SELECT b.status FROM consumer_jobs j JOIN consumer_jobs b ON b.worker = j.worker
					WHERE j.event_id = $1 AND b.stream = j.stream AND b.stream_version = 1`, e.ID).Scan(&status); err != nil {
					return err
				}
				mu.Lock()
				if status == "failed" {
					parkedSeenAt = time.Now()
				}
				mu.Unlock()
			}
			h.record("rt", e)
			return nil
		})
		start(t, rt)
		appendOne(t, store, "conversation-bad", "MessagePosted")
		appendOne(t, store, "conversation-bad", "MessagePosted")
		for i := 0; i < 3; i++ {
			appendOne(t, store, "conversation-good", "MessagePosted")
		}
		waitFor(t, 60*time.Second, "all jobs settled", func() bool {
			st := jobStatus(t, pool, "answers")
			return st["done"] == 4 && st["failed"] == 1
		})
		var attempts int
		var lastError string
		if err := pool.QueryRow(context.Background(), `SELECT attempts, last_error FROM consumer_jobs
			WHERE worker = 'answers' AND status = 'failed'`).Scan(&attempts, &lastError); err != nil {
			t.Fatal(err)
		}
		if attempts != 3 || lastError != "this message makes the model crash" {
			t.Fatalf("parked job: attempts %d, error %q", attempts, lastError)
		}
		// The good stream was done before the poison job was parked (it
		// took 150ms + 300ms of backoff): it did not wait for it.
		var goodFirst bool
		if err := pool.QueryRow(context.Background(), `SELECT
			max(finished_at) FILTER (WHERE stream = 'conversation-good') < max(finished_at) FILTER (WHERE status = 'failed')
			FROM consumer_jobs WHERE worker = 'answers'`).Scan(&goodFirst); err != nil {
			t.Fatal(err)
		}
		if !goodFirst {
			t.Fatal("the good stream finished after the poison job was parked: it waited for it")
		}
		mu.Lock()
		defer mu.Unlock()
		if parkedSeenAt.IsZero() {
			t.Fatal("the bad stream's second event ran before its first was parked")
		}
		if got := h.order["conversation-good"]; fmt.Sprint(got) != "[1 2 3]" {
			t.Fatalf("good stream order %v", got)
		}
	})
}

// A panicking handler is recovered by the router: the projection's event is
// retried (rolled back first), the worker's job is tried again, and nothing
// is applied twice.
func TestPanicsAreRecoveredAndRetried(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		c := newCounter(t, pool, "panicky")
		var projectionPanicked, workerPanicked sync.Once
		c.fail = func(e es.Event) error {
			if e.Version == 2 {
				projectionPanicked.Do(func() { panic("projection bug") })
			}
			return nil
		}
		h := newHandled()
		rt := messaging.NewRuntime(store, pool, fast(messaging.WithJobBackoff(10*time.Millisecond, 50*time.Millisecond))...)
		rt.AddProjection(c)
		rt.AddWorker("panicky-worker", es.Filter{}, func(ctx context.Context, e es.Event) error {
			if e.Version == 2 {
				workerPanicked.Do(func() { panic("worker bug") })
			}
			h.record("rt", e)
			return nil
		})
		start(t, rt)
		pos := appendN(t, store, 2, 3)
		if err := rt.WaitForProjections(waitCtx(t, 30*time.Second), pos); err != nil {
			t.Fatal(err)
		}
		if got, want := c.dump(t, pool), expectedDump(2, 3); got != want {
			t.Fatalf("read model:\n%s\nwant:\n%s", got, want)
		}
		waitFor(t, 30*time.Second, "6 jobs done", func() bool { return jobStatus(t, pool, "panicky-worker")["done"] == 6 })
		var retried int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM consumer_jobs
			WHERE worker = 'panicky-worker' AND attempts = 2 AND stream_version = 2`).Scan(&retried); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if retried != 1 || len(h.count) != 6 {
			t.Fatalf("jobs tried twice: %d, events handled: %d", retried, len(h.count))
		}
	})
}

// A handler that always panics is a failing handler like any other: its job
// is parked after its attempts with the panic as the reason (carried from the
// handler to the job's bookkeeping in process, not through message metadata),
// and the worker's OnParked hook is told that reason.
func TestPanickingJobIsParkedWithThePanicAsReason(t *testing.T) {
	pool := pgtest.NewPool(t)
	store := memory.New()
	var mu sync.Mutex
	var told string
	rt := messaging.NewRuntime(store, pool, fast(
		messaging.WithMaxAttempts(2),
		messaging.WithJobBackoff(10*time.Millisecond, 20*time.Millisecond),
	)...)
	rt.AddWorker("always-panics", es.Filter{}, func(ctx context.Context, e es.Event) error {
		panic("worker bug " + e.Stream)
	}, messaging.OnParked(func(ctx context.Context, e es.Event, reason string) error {
		mu.Lock()
		defer mu.Unlock()
		told = reason
		return nil
	}))
	start(t, rt)
	appendOne(t, store, "conversation-p", "MessagePosted")
	waitFor(t, 30*time.Second, "the job parked", func() bool { return jobStatus(t, pool, "always-panics")["failed"] == 1 })
	var attempts int
	var lastError string
	if err := pool.QueryRow(context.Background(), `SELECT attempts, last_error FROM consumer_jobs
		WHERE worker = 'always-panics'`).Scan(&attempts, &lastError); err != nil {
		t.Fatal(err)
	}
	if attempts != 2 || lastError != "panic: worker bug conversation-p" {
		t.Fatalf("parked job: attempts %d, error %q", attempts, lastError)
	}
	waitFor(t, 30*time.Second, "the OnParked hook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return told != ""
	})
	mu.Lock()
	defer mu.Unlock()
	if told != lastError {
		t.Fatalf("OnParked told %q, job says %q", told, lastError)
	}
}
