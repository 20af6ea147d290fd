package messaging_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/adapters/eventstore/postgres"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// counter is a test projection: per stream, how many events it applied and
// the versions it saw, in a table of its own.
type counter struct {
	name  string
	table string
	// fail, when set, is asked before each event; an error aborts the event.
	fail func(e es.Event) error
	// applied counts Handle calls, committed or not.
	applied atomic.Int64
}

func newCounter(t *testing.T, pool *pgxpool.Pool, name string) *counter {
	t.Helper()
	c := &counter{name: name, table: "rm_" + strings.ReplaceAll(name, "-", "_")}
	_, err := pool.Exec(context.Background(), fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
		stream text PRIMARY KEY, n int NOT NULL, versions text NOT NULL)`, c.table))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *counter) Name() string { return c.name }

func (c *counter) Handle(ctx context.Context, tx pgx.Tx, e es.Event) error {
	c.applied.Add(1)
	if e.Type != "Counted" {
		return nil
	}
	_, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (stream, n, versions) VALUES ($1, 1, $2)
		ON CONFLICT (stream) DO UPDATE SET n = %[1]s.n + 1, versions = %[1]s.versions || ',' || $2`, c.table),
		e.Stream, fmt.Sprint(e.Version))
	if err != nil {
		return err
	}
	if c.fail != nil {
		// After the write: a failure here must roll the write back.
		return c.fail(e)
	}
	return nil
}

func (c *counter) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "DELETE FROM "+c.table)
	return err
}

// dump returns the read model in a stable order.
func (c *counter) dump(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT stream, n, versions FROM "+c.table+" ORDER BY stream")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var s, v string
		var n int
		if err := rows.Scan(&s, &n, &v); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %s\n", s, n, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// total is the number of events the read model holds.
func (c *counter) total(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT COALESCE(sum(n), 0) FROM "+c.table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func appendN(t *testing.T, store es.Store, streams, perStream int) es.Position {
	t.Helper()
	var last es.Position
	for i := 0; i < perStream; i++ {
		for s := 0; s < streams; s++ {
			data, _ := json.Marshal(map[string]int{"i": i})
			res, err := store.Append(context.Background(), fmt.Sprintf("counter-%d", s), es.Any,
				es.NewEvent{ID: uuid.New(), Type: "Counted", Data: data})
			if err != nil {
				t.Fatal(err)
			}
			last = res.Position
		}
	}
	return last
}

func appendOne(t *testing.T, store es.Store, stream, typ string) es.Position {
	t.Helper()
	res, err := store.Append(context.Background(), stream, es.Any, es.NewEvent{ID: uuid.New(), Type: typ, Data: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	return res.Position
}

func checkpoint(t *testing.T, pool *pgxpool.Pool, name string) es.Position {
	t.Helper()
	var p string
	err := pool.QueryRow(context.Background(), "SELECT position FROM consumer_checkpoints WHERE name = $1", name).Scan(&p)
	if err != nil && err != pgx.ErrNoRows {
		t.Fatal(err)
	}
	return es.Position(p)
}

// running runs rt until the test ends (or stop is called) and reports Run's error.
type running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func start(t *testing.T, rt interface{ Run(context.Context) error }) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- rt.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not stop")
		}
	})
}

// forEachStore runs a test on the in-memory event store and on the
// PostgreSQL one; checkpoints, jobs and read models are in PostgreSQL either way.
func forEachStore(t *testing.T, test func(t *testing.T, pool *pgxpool.Pool, store es.Store)) {
	t.Run("memory", func(t *testing.T) {
		test(t, pgtest.NewPool(t), memory.New())
	})
	t.Run("postgres", func(t *testing.T) {
		pool := pgtest.NewPool(t)
		store, err := postgres.New(context.Background(), pool)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(store.Close)
		test(t, pool, headed{store, pool})
	})
}

// headed gives the PostgreSQL store the optional messaging.HeadReader, which
// the store adapter does not have (yet): the last committed event's position,
// visible to readers or not, in the adapter's encoding.
type headed struct {
	*postgres.Store
	pool *pgxpool.Pool
}

func (h headed) Head(ctx context.Context) (es.Position, error) {
	var p string
	err := h.pool.QueryRow(ctx, `
		SELECT COALESCE((
			SELECT lpad(to_hex(epoch), 8, '0') || lpad(to_hex(transaction_id::text::bigint), 16, '0') || lpad(to_hex(global_position), 16, '0')
			FROM events ORDER BY epoch DESC, transaction_id DESC, global_position DESC LIMIT 1), '')`).Scan(&p)
	return es.Position(p), err
}

func waitCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
