package messaging_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/postgres"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
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
		res, err := store.Append(context.Background(), fmt.Sprintf("counter-%d", i%10), es.Any, batch...)
		if err != nil {
			b.Fatal(err)
		}
		last = res.Position
	}
	return headed{store, pool}, last, store.Close
}

// BenchmarkProjectionLive measures the live runner: one transaction per event
// (read-model write + checkpoint compare-and-set + notify), through the router.
func BenchmarkProjectionLive(b *testing.B) {
	const n = 1000
	store, last, closeStore := benchLog(b, n)
	defer closeStore()
	pool := store.(headed).pool
	for i := 0; i < b.N; i++ {
		c := &counter{name: fmt.Sprintf("live%d", i), table: fmt.Sprintf("rm_live%d", i)}
		if _, err := pool.Exec(context.Background(), "CREATE TABLE "+c.table+" (stream text PRIMARY KEY, n int NOT NULL, versions text NOT NULL)"); err != nil {
			b.Fatal(err)
		}
		rt := messaging.NewRuntime(store, pool, messaging.WithLeadershipInterval(10*time.Millisecond))
		rt.AddProjection(c)
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
}

// BenchmarkProjectionCatchUp measures CatchUp and Rebuild: 500 events per transaction.
func BenchmarkProjectionCatchUp(b *testing.B) {
	const n = 5000
	store, _, closeStore := benchLog(b, n)
	defer closeStore()
	pool := store.(headed).pool
	for i := 0; i < b.N; i++ {
		c := &counter{name: fmt.Sprintf("batch%d", i), table: fmt.Sprintf("rm_batch%d", i)}
		if _, err := pool.Exec(context.Background(), "CREATE TABLE "+c.table+" (stream text PRIMARY KEY, n int NOT NULL, versions text NOT NULL)"); err != nil {
			b.Fatal(err)
		}
		began := time.Now()
		if err := messaging.CatchUp(context.Background(), store, pool, c); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/time.Since(began).Seconds(), "events/s")
	}
}
