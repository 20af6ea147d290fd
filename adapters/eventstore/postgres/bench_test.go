package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/migrations"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// benchPool is a migrated database with room for 16 concurrent writers.
func benchPool(b *testing.B) *pgxpool.Pool {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 20
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := migrations.Apply(context.Background(), pool); err != nil {
		b.Fatal(err)
	}
	return pool
}

var benchData = json.RawMessage(`{"conversation_id":"7d0b8a4e-2f7c-4c39-9a53-2a3b6f1f0c11","role":"user","content":"Wie sind die Öffnungszeiten am Samstag?"}`)

// parallel runs op b.N times spread over n goroutines and reports ops/s.
func parallel(b *testing.B, n int, unit string, op func(i int64) error) {
	b.Helper()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		once sync.Once
		fail error
	)
	b.ResetTimer()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if err := op(i); err != nil {
					once.Do(func() { fail = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if fail != nil {
		b.Fatal(fail)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// BenchmarkAppend: one event per append, each to a stream of its own, through
// the adapter, at 1 and 16 concurrent writers.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, err := New(context.Background(), benchPool(b))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			parallel(b, writers, "appends/s", func(int64) error {
				e := es.NewEvent{ID: uuid.New(), Type: "MessagePosted", Data: benchData,
					Metadata: es.Metadata{OrganizationID: "0d3f2a55-6c0e-4f57-a0b4-0c4c7e1b2f11", Actor: "api_key:bench"}}
				_, err := s.Append(ctx, "conversation-"+uuid.NewString(), es.NoStream, e)
				return err
			})
		})
	}
}

// BenchmarkRawInsert is the comparison: one INSERT per transaction with plain
// pgx into a table without indexes beyond its key, at 1 and 16 clients.
func BenchmarkRawInsert(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			pool := benchPool(b)
			ctx := context.Background()
			if _, err := pool.Exec(ctx, `CREATE TABLE raw_insert (id bigserial PRIMARY KEY, stream text, data jsonb)`); err != nil {
				b.Fatal(err)
			}
			parallel(b, clients, "inserts/s", func(int64) error {
				_, err := pool.Exec(ctx, `INSERT INTO raw_insert (stream, data) VALUES ($1, $2)`, "conversation-"+uuid.NewString(), string(benchData))
				return err
			})
		})
	}
}

// BenchmarkRawInsertEventsTable is the same plain INSERT into the events table
// itself (its four indexes, jsonb columns): what the table costs, apart from
// the adapter's checks.
func BenchmarkRawInsertEventsTable(b *testing.B) {
	pool := benchPool(b)
	ctx := context.Background()
	parallel(b, 16, "inserts/s", func(int64) error {
		_, err := pool.Exec(ctx, `INSERT INTO events (epoch, event_id, stream, version, organization_id, type, data, metadata)
			VALUES (0, $1, $2, 1, '0d3f2a55-6c0e-4f57-a0b4-0c4c7e1b2f11', 'MessagePosted', $3, '{"actor":"api_key:bench"}')`,
			uuid.New(), "conversation-"+uuid.NewString(), string(benchData))
		return err
	})
}

// BenchmarkReadAll pages through the global log, 500 events a page.
func BenchmarkReadAll(b *testing.B) {
	const logSize, page = 20000, 500
	s, err := New(context.Background(), benchPool(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var last es.Position
	for i := 0; i < logSize; i += 100 {
		batch := make([]es.NewEvent, 100)
		for j := range batch {
			batch[j] = es.NewEvent{ID: uuid.New(), Type: "MessagePosted", Data: benchData,
				Metadata: es.Metadata{OrganizationID: "0d3f2a55-6c0e-4f57-a0b4-0c4c7e1b2f11"}}
		}
		res, err := s.Append(ctx, fmt.Sprintf("conversation-%d", i%1000), es.Any, batch...)
		if err != nil {
			b.Fatal(err)
		}
		last = res.Position
	}
	for { // wait until the whole log is visible to readers
		all, err := s.ReadAll(ctx, es.Start, logSize, es.Filter{})
		if err != nil {
			b.Fatal(err)
		}
		if len(all) == logSize && all[logSize-1].Position == last {
			break
		}
		if err := s.WaitForEvents(ctx, last); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	read, pos := 0, es.Start
	for read < b.N {
		events, err := s.ReadAll(ctx, pos, min(page, b.N-read), es.Filter{})
		if err != nil {
			b.Fatal(err)
		}
		if len(events) == 0 {
			pos = es.Start
			continue
		}
		read += len(events)
		pos = events[len(events)-1].Position
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppendInterleaved measures the append against the raw limit
// under the same load: 16 clients run each contender for a slice of time
// in turn, rounds after rounds, on one database, so that the load other
// processes put on the machine falls on all of them alike. It reports each
// one's rate and the ratios to the raw limit: Store.Append ("append"), a
// plain INSERT of the same event into the events table ("table": what the
// table itself costs), and one INSERT per transaction into a 3-column table
// ("raw").
//
//	go test ./adapters/eventstore/postgres/ -run '^$' -bench AppendInterleaved -benchtime 8x
//
// b.N is the number of rounds; each round gives every contender 500 ms.
func BenchmarkAppendInterleaved(b *testing.B) {
	const clients, slice = 16, 500 * time.Millisecond
	pool := benchPool(b)
	ctx := context.Background()
	s, err := New(ctx, pool)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE raw_insert (id bigserial PRIMARY KEY, stream text, data jsonb)`); err != nil {
		b.Fatal(err)
	}
	meta := es.Metadata{OrganizationID: "0d3f2a55-6c0e-4f57-a0b4-0c4c7e1b2f11", Actor: "api_key:bench"}
	metaJSON, _ := json.Marshal(meta)
	contenders := []struct {
		name string
		op   func() error
	}{
		{"append", func() error {
			_, err := s.Append(ctx, "conversation-"+uuid.NewString(), es.NoStream,
				es.NewEvent{ID: uuid.New(), Type: "MessagePosted", Data: benchData, Metadata: meta})
			return err
		}},
		{"table", func() error {
			_, err := pool.Exec(ctx, `INSERT INTO events (epoch, event_id, stream, version, organization_id, type, data, metadata)
				VALUES (0, $1, $2, 1, $3, 'MessagePosted', $4, $5)`,
				uuid.New(), "conversation-"+uuid.NewString(), meta.OrganizationID, string(benchData), string(metaJSON))
			return err
		}},
		{"raw", func() error {
			_, err := pool.Exec(ctx, `INSERT INTO raw_insert (stream, data) VALUES ($1, $2)`, "conversation-"+uuid.NewString(), string(benchData))
			return err
		}},
	}
	done := make([]int64, len(contenders))
	spent := make([]time.Duration, len(contenders))
	b.ResetTimer()
	for round := range b.N {
		for k := range contenders {
			c := contenders[(k+round)%len(contenders)] // rotate the order
			i := (k + round) % len(contenders)
			var n atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			start := time.Now()
			for range clients {
				wg.Go(func() {
					for time.Since(start) < slice {
						if err := c.op(); err != nil {
							failed.CompareAndSwap(nil, err)
							return
						}
						n.Add(1)
					}
				})
			}
			wg.Wait()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			done[i] += n.Load()
			spent[i] += time.Since(start)
		}
	}
	b.StopTimer()
	rate := func(i int) float64 { return float64(done[i]) / spent[i].Seconds() }
	for i, c := range contenders {
		b.ReportMetric(rate(i), c.name+"/s")
	}
	b.ReportMetric(rate(0)/rate(2), "append/raw")
	b.ReportMetric(rate(1)/rate(2), "table/raw")
}
