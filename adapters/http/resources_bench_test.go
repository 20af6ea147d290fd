package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/migrations"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// benchClients is how many clients post at once in the message benchmarks.
const benchClients = 16

// BenchmarkPostMessage posts user messages (?wait=0: no waiting for the
// reply) from 16 concurrent clients, each in its own session, through the
// real router, event store and read-your-writes wait ("api"), and in the same
// run inserts event-sized rows, one INSERT per transaction, from 16 clients
// into the same PostgreSQL ("raw-insert"), the limit the API is measured
// against. Both report requests (inserts) per second and the 99th percentile
// latency; "api" also reports the database round trips per request: those
// made while serving the request (req-roundtrips/op) and those of the
// projection runner and other background work (bg-roundtrips/op), counted by
// a tracer on the pool; -v lists them by statement.
//
//	DATABASE_URL=... go test ./adapters/http/ -run '^$' -bench PostMessage -benchtime 2000x
func BenchmarkPostMessage(b *testing.B) {
	b.Run("api", benchmarkPostMessageAPI)
	b.Run("raw-insert", benchmarkRawInsert)
}

func benchmarkPostMessageAPI(b *testing.B) {
	tracer := &roundTrips{}
	ts := newTestServerOn(b, tracedPool(b, tracer), withConfig(Config{RateLimitPerHour: 1 << 30}))
	post := func(path, body string) map[string]any {
		r := ts.do(b, http.MethodPost, path, ts.org, body)
		if r.Status/100 != 2 {
			b.Fatalf("%s: %d %s", path, r.Status, r.Body)
		}
		return r.data(b)
	}
	asst := post("/api/v1/assistants/", seedAssistant)["id"].(string)
	sessions := make([]string, benchClients)
	for i := range sessions {
		sessions[i] = post("/api/v1/sessions/", `{"assistant_id":"`+asst+`"}`)["id"].(string)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}}
	body, _ := json.Marshal(map[string]any{"content": "Hello, I need help with my order", "metadata": map[string]any{"user_type": "customer"}})
	// Warm the credential cache and the connections, then count from zero.
	for _, id := range sessions {
		post("/api/v1/sessions/"+id+"/messages?wait=0", string(body))
	}
	tracer.reset()
	b.ResetTimer()
	lat, elapsed := concurrently(b, func(c int) error {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/v1/sessions/"+sessions[c]+"/messages?wait=0", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", ts.org.ClientID)
		req.Header.Set("X-API-Secret", ts.org.Secret)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	b.StopTimer()
	report(b, lat, elapsed, "req/s")
	fg, bg := tracer.report(b, b.N)
	b.ReportMetric(fg, "req-roundtrips/op")
	b.ReportMetric(bg, "bg-roundtrips/op")
}

// benchmarkRawInsert is the raw limit: one INSERT of an event-sized row per
// transaction, 16 clients, on the same server.
func benchmarkRawInsert(b *testing.B) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = benchClients // one connection per client
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE raw_events (
		position bigserial PRIMARY KEY, id uuid NOT NULL UNIQUE, stream_name text NOT NULL, version bigint NOT NULL,
		type text NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		b.Fatal(err)
	}
	data, _ := json.Marshal(map[string]any{"message_id": uuid.New(), "role": "user", "content": "Hello, I need help with my order",
		"metadata": map[string]any{"user_type": "customer"}, "posted_at": time.Now().UTC()})
	meta, _ := json.Marshal(map[string]any{"organization_id": uuid.New(), "actor": "api_key:abcdefgh", "request_id": uuid.NewString(),
		"correlation_id": uuid.NewString()})
	streams := make([]string, benchClients)
	versions := make([]int64, benchClients)
	for i := range streams {
		streams[i] = "session-" + uuid.NewString()
	}
	b.ResetTimer()
	lat, elapsed := concurrently(b, func(c int) error {
		versions[c]++
		_, err := pool.Exec(ctx, `INSERT INTO raw_events (id, stream_name, version, type, data, metadata) VALUES ($1, $2, $3, $4, $5, $6)`,
			uuid.New(), streams[c], versions[c], "MessagePosted", data, meta)
		return err
	})
	b.StopTimer()
	report(b, lat, elapsed, "inserts/s")
}

// concurrently runs b.N calls of do across benchClients goroutines (do(c) is
// only ever called from goroutine c) and returns each call's latency.
func concurrently(b *testing.B, do func(c int) error) ([]time.Duration, time.Duration) {
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		next      atomic.Int64
		failed    atomic.Int64
		firstErr  atomic.Value
		wg        sync.WaitGroup
	)
	start := time.Now()
	for c := range benchClients {
		wg.Go(func() {
			var mine []time.Duration
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := do(c); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d calls failed, first: %v", n, b.N, firstErr.Load())
	}
	return latencies, elapsed
}

func report(b *testing.B, latencies []time.Duration, elapsed time.Duration, unit string) {
	slices.Sort(latencies)
	p50 := latencies[len(latencies)/2]
	p99 := latencies[min(len(latencies)-1, len(latencies)*99/100)]
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), unit)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}

// tracedPool is a fresh migrated database whose pool counts every statement
// and batch (one round trip each) in t.
func tracedPool(b *testing.B, t *roundTrips) *pgxpool.Pool {
	url := pgtest.NewDatabase(b)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.ConnConfig.Tracer = t
	cfg.MaxConns = 20 // as cmd/companin sets it (pgxpool's default is 4 on two cores)
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

// roundTrips counts statements by their text, apart for those made while
// serving an HTTP request (their context has http.ServerContextKey) and the
// others (projection runner, workers, listeners).
type roundTrips struct {
	mu     sync.Mutex
	counts map[roundTripKey]int
}

type roundTripKey struct {
	request bool
	sql     string
}

func (t *roundTrips) add(ctx context.Context, sql string) {
	sql = strings.Join(strings.Fields(sql), " ")
	if len(sql) > 90 {
		sql = sql[:90]
	}
	k := roundTripKey{request: ctx.Value(http.ServerContextKey) != nil, sql: sql}
	t.mu.Lock()
	if t.counts == nil {
		t.counts = map[roundTripKey]int{}
	}
	t.counts[k]++
	t.mu.Unlock()
}

func (t *roundTrips) reset() {
	t.mu.Lock()
	t.counts = nil
	t.mu.Unlock()
}

// report logs the statements per request, most frequent first, and returns
// the round trips per request in requests and in the background.
func (t *roundTrips) report(b *testing.B, n int) (fg, bg float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]roundTripKey, 0, len(t.counts))
	for k, c := range t.counts {
		keys = append(keys, k)
		if k.request {
			fg += float64(c)
		} else {
			bg += float64(c)
		}
	}
	slices.SortFunc(keys, func(x, y roundTripKey) int { return t.counts[y] - t.counts[x] })
	var sb strings.Builder
	for _, k := range keys {
		where := "background"
		if k.request {
			where = "request"
		}
		fmt.Fprintf(&sb, "\n  %6.3f/op  %-10s %s", float64(t.counts[k])/float64(n), where, k.sql)
	}
	b.Logf("round trips by statement (N=%d):%s", n, sb.String())
	return fg / float64(n), bg / float64(n)
}

func (t *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	t.add(ctx, d.SQL)
	return ctx
}

func (t *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (t *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	t.add(ctx, "(batch)")
	return ctx
}

func (t *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (t *roundTrips) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	t.add(ctx, "(copy from)")
	return ctx
}

func (t *roundTrips) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}
