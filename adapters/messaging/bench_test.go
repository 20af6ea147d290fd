package messaging_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/postgres"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/thread"
	"github.com/companin/companin/projections"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// benchLog appends n events to 10 streams, in batches of 10 per append.
func benchLog(b *testing.B, n int) (es.Store, es.Position, func()) {
	b.Helper()
	pool := pgtest.NewPool(b)
	store, err := postgres.New(context.Background(), pool)
	if err != nil {
		b.Fatal(err)
	}
	var last es.Position
	for i := 0; i < n; i += 10 {
		batch := make([]es.NewEvent, 0, 10)
		for j := 0; j < 10 && i+j < n; j++ {
			data, _ := json.Marshal(map[string]int{"i": i + j})
			batch = append(batch, es.NewEvent{ID: uuid.New(), Type: "Counted", Data: data})
		}
		res, err := store.Append(context.Background(), fmt.Sprintf("counter-%d", (i/10)%10), es.Any, batch...)
		if err != nil {
			b.Fatal(err)
		}
		last = res.Position
	}
	return headed{store, pool}, last, store.Close
}

// A benchmark read model: kind "counter" is the test projection (per
// stream, one row updated by every event: ten hot rows); kind "rows" writes
// one row per event, like the messages of a conversation.
type benchModel struct {
	kind string
	name string
}

func (m benchModel) create(b *testing.B, pool *pgxpool.Pool) messaging.Projection {
	b.Helper()
	var ddl string
	var p messaging.Projection
	switch m.kind {
	case "counter":
		c := &counter{name: m.name, table: "rm_" + m.name}
		ddl, p = "CREATE TABLE "+c.table+" (stream text PRIMARY KEY, n int NOT NULL, versions text NOT NULL)", c
	default:
		r := rowsModel{emptied{"rm_" + m.name}, m.name}
		ddl, p = "CREATE TABLE "+r.table+" (id uuid PRIMARY KEY, stream text NOT NULL, version bigint NOT NULL, data jsonb NOT NULL)", r
	}
	if _, err := pool.Exec(context.Background(), ddl); err != nil {
		b.Fatal(err)
	}
	return p
}

type rowsModel struct {
	emptied
	name string
}

func (r rowsModel) Name() string { return r.name }

func (r rowsModel) Handle(ctx context.Context, tx pgx.Tx, e es.Event) error {
	if e.Type != "Counted" {
		return nil
	}
	_, err := tx.Exec(ctx, r.insert(), e.ID, e.Stream, int64(e.Version), string(e.Data))
	return err
}

// benchModels numbers the read models the benchmarks create: the testing
// package may run a benchmark function more than once on one database.
var benchModels atomic.Int64

func (r rowsModel) insert() string {
	return "INSERT INTO " + r.table + " (id, stream, version, data) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING"
}

// BenchmarkProjectionLive measures the live runner following a backlog of
// n events (pages of 100, each applied in one transaction with the
// checkpoint compare-and-set and its notification), through the router:
// batched (the statements of a page in one round trip, asynchronous commits)
// beside old (one round trip per statement and synchronous commits, as the
// runner was before).
func BenchmarkProjectionLive(b *testing.B) {
	const n = 2000
	store, last, closeStore := benchLog(b, n)
	defer closeStore()
	pool := store.(headed).pool
	for _, kind := range []string{"counter", "rows"} {
		for _, path := range []string{"batched", "old"} {
			b.Run(kind+"/"+path, func(b *testing.B) {
				messaging.OldRunner(path == "old")
				defer messaging.OldRunner(false)
				for i := 0; i < b.N; i++ {
					p := benchModel{kind: kind, name: fmt.Sprintf("live_%s_%s_%d", kind, path[:3], benchModels.Add(1))}.create(b, pool)
					rt := messaging.NewRuntime(store, pool, messaging.WithLeadershipInterval(10*time.Millisecond))
					rt.AddProjection(p)
					ctx, cancel := context.WithCancel(context.Background())
					done := make(chan error, 1)
					began := time.Now()
					go func() { done <- rt.Run(ctx) }()
					if err := rt.WaitForProjections(context.Background(), last); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(n)/time.Since(began).Seconds(), "events/s")
					cancel()
					<-done
				}
			})
		}
	}
}

// BenchmarkProjectionCatchUp measures CatchUp (Rebuild replays the same way):
// 500 events per transaction, batched and old (see
// BenchmarkProjectionLive; both read the next page while they apply one),
// beside the raw peer: the same log pages read and the same statements sent
// in a pgx.Batch per page in a transaction of their own, without the runner.
func BenchmarkProjectionCatchUp(b *testing.B) {
	const n = 10000
	store, _, closeStore := benchLog(b, n)
	defer closeStore()
	pool := store.(headed).pool
	for _, kind := range []string{"counter", "rows"} {
		for _, path := range []string{"batched", "old", "raw"} {
			b.Run(kind+"/"+path, func(b *testing.B) {
				messaging.OldRunner(path == "old")
				defer messaging.OldRunner(false)
				for i := 0; i < b.N; i++ {
					p := benchModel{kind: kind, name: fmt.Sprintf("catchup_%s_%s_%d", kind, path[:3], benchModels.Add(1))}.create(b, pool)
					began := time.Now()
					if path == "raw" {
						rawReplay(b, store, pool, p)
					} else if err := messaging.CatchUp(context.Background(), store, pool, p); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(n)/time.Since(began).Seconds(), "events/s")
				}
			})
		}
	}
}

// rawReplay is the peer of CatchUp: what it does with the database for p,
// and nothing else.
func rawReplay(b *testing.B, store es.Store, pool *pgxpool.Pool, p messaging.Projection) {
	ctx := context.Background()
	pos := es.Start
	for {
		events, err := store.ReadAll(ctx, pos, 500, es.Filter{})
		if err != nil {
			b.Fatal(err)
		}
		if len(events) == 0 {
			return
		}
		batch := &pgx.Batch{}
		for _, e := range events {
			switch p := p.(type) {
			case *counter:
				batch.Queue(fmt.Sprintf(`INSERT INTO %s (stream, n, versions) VALUES ($1, 1, $2)
					ON CONFLICT (stream) DO UPDATE SET n = %[1]s.n + 1, versions = %[1]s.versions || ',' || $2`, p.table),
					e.Stream, fmt.Sprint(e.Version))
			case rowsModel:
				batch.Queue(p.insert(), e.ID, e.Stream, int64(e.Version), string(e.Data))
			}
		}
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, batch).Close() })
		if err != nil {
			b.Fatal(err)
		}
		pos = events[len(events)-1].Position
	}
}

// BenchmarkRebuildConversations measures Rebuild of the real conversations
// projection (sessions and their messages: per message an insert that also
// moves the thread's count) over 100 sessions of 100 messages, batched
// beside old (see BenchmarkProjectionLive).
func BenchmarkRebuildConversations(b *testing.B) {
	const sessions, perSession = 100, 100
	pool := pgtest.NewPool(b)
	pg, err := postgres.New(context.Background(), pool)
	if err != nil {
		b.Fatal(err)
	}
	defer pg.Close()
	store := headed{pg, pool}
	ctx := context.Background()
	assistantID := uuid.New()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for s := 0; s < sessions; s++ {
		id := uuid.New()
		started, _ := json.Marshal(thread.SessionStarted{SessionID: id, AssistantID: assistantID, VisitorID: "v", Metadata: map[string]any{}, StartedAt: at})
		events := []es.NewEvent{{ID: uuid.New(), Type: thread.TypeSessionStarted, Data: started}}
		for m := 0; m < perSession; m++ {
			role := message.User
			if m%2 == 1 {
				role = message.Assistant
			}
			posted, _ := json.Marshal(message.Posted{MessageID: uuid.New(), Role: role,
				Content: fmt.Sprintf("message %d of session %d, with some words to store", m, s), PostedAt: at.Add(time.Duration(m) * time.Second)})
			events = append(events, es.NewEvent{ID: uuid.New(), Type: message.TypePosted, Data: posted})
		}
		mctx := es.WithMetadata(ctx, es.Metadata{OrganizationID: "org-bench", Actor: "bench"})
		if _, err := store.Append(mctx, thread.Session.Stream(id), es.NoStream, events...); err != nil {
			b.Fatal(err)
		}
	}
	n := sessions * (perSession + 1)
	ps := []messaging.Projection{projections.Conversations{}}
	for _, path := range []string{"batched", "old"} {
		b.Run(path, func(b *testing.B) {
			messaging.OldRunner(path == "old")
			defer messaging.OldRunner(false)
			for i := 0; i < b.N; i++ {
				began := time.Now()
				if err := messaging.Rebuild(ctx, store, pool, ps, ""); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(n)/time.Since(began).Seconds(), "events/s")
			}
			var count int
			if err := pool.QueryRow(ctx, `SELECT sum(message_count) FROM sessions`).Scan(&count); err != nil || count != sessions*perSession {
				b.Fatalf("message counts add up to %d (%v), want %d", count, err, sessions*perSession)
			}
		})
	}
}

// BenchmarkReadYourWrites measures the live runner as the API uses it: 16
// writers each append an event and wait for the projection to have applied
// it (WaitForProjections), 2,000 events in all; it reports the events/s and
// the wait's p50 and p99, batched beside old (see BenchmarkProjectionLive),
// beside the peer: the same appends without waiting.
func BenchmarkReadYourWrites(b *testing.B) {
	const writers, n = 16, 2000
	pool := pgtest.NewPool(b)
	pg, err := postgres.New(context.Background(), pool)
	if err != nil {
		b.Fatal(err)
	}
	defer pg.Close()
	store := headed{pg, pool}
	for _, path := range []string{"batched", "old", "append-only"} {
		b.Run(path, func(b *testing.B) {
			messaging.OldRunner(path == "old")
			defer messaging.OldRunner(false)
			for i := 0; i < b.N; i++ {
				p := benchModel{kind: "rows", name: fmt.Sprintf("ryw_%s_%d", path[:3], benchModels.Add(1))}.create(b, pool)
				rt := messaging.NewRuntime(store, pool, messaging.WithLeadershipInterval(10*time.Millisecond))
				rt.AddProjection(p)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- rt.Run(ctx) }()
				// Led and caught up before the clock starts.
				if err := rt.WaitForProjections(ctx, appendCounted(b, store, "warm-up")); err != nil {
					b.Fatal(err)
				}
				waits := make([]time.Duration, n)
				errs := make(chan error, writers)
				began := time.Now()
				for w := 0; w < writers; w++ {
					go func() {
						for k := w; k < n; k += writers {
							pos := appendCounted(b, store, fmt.Sprintf("writer-%d", w))
							if path == "append-only" {
								continue
							}
							t := time.Now()
							if err := rt.WaitForProjections(ctx, pos); err != nil {
								errs <- err
								return
							}
							waits[k] = time.Since(t)
						}
						errs <- nil
					}()
				}
				for w := 0; w < writers; w++ {
					if err := <-errs; err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n)/time.Since(began).Seconds(), "events/s")
				if path != "append-only" {
					sort.Slice(waits, func(i, j int) bool { return waits[i] < waits[j] })
					b.ReportMetric(float64(waits[n/2].Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(waits[n*99/100].Microseconds())/1000, "p99-ms")
				}
				cancel()
				<-done
			}
		})
	}
}

func appendCounted(b *testing.B, store es.Store, stream string) es.Position {
	res, err := store.Append(context.Background(), stream, es.Any, es.NewEvent{ID: uuid.New(), Type: "Counted", Data: json.RawMessage(`{}`)})
	if err != nil {
		b.Error(err)
		return es.Start
	}
	return res.Position
}
