package messaging_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// versions is an idempotent test projection (as every real one is: replays
// change nothing): the versions of each stream it applied. An event that
// poison selects is stored with a NUL character in a jsonb value, which
// PostgreSQL refuses (22P05), as it refused the user context of the issue.
type versions struct {
	name   string
	table  string
	poison func(e es.Event) bool
	// err, when set, is returned for poisoned events instead of the NUL write.
	err func(e es.Event) error
}

func newVersions(t *testing.T, pool *pgxpool.Pool, name string) *versions {
	t.Helper()
	v := &versions{name: name, table: "rmv_" + strings.ReplaceAll(name, "-", "_")}
	_, err := pool.Exec(context.Background(), fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
		stream text, version bigint, data jsonb, PRIMARY KEY (stream, version))`, v.table))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *versions) Name() string { return v.name }

func (v *versions) Handle(ctx context.Context, tx pgx.Tx, e es.Event) error {
	data := `{"ok":true}`
	if v.poison != nil && v.poison(e) {
		if v.err != nil {
			return v.err(e)
		}
		data = `{"x":"a\u0000b"}`
	}
	_, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (stream, version, data) VALUES ($1, $2, $3::jsonb)
		ON CONFLICT DO NOTHING`, v.table), e.Stream, int64(e.Version), data)
	return err
}

func (v *versions) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "DELETE FROM "+v.table)
	return err
}

func (v *versions) dump(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT stream, string_agg(version::text, ',' ORDER BY version) FROM "+v.table+" GROUP BY stream ORDER BY stream")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var s, vs string
		if err := rows.Scan(&s, &vs); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s\n", s, vs)
	}
	return b.String()
}

func parked(t *testing.T, pool *pgxpool.Pool, consumer string) []messaging.DeadLetter {
	t.Helper()
	ds, err := messaging.Parked(context.Background(), pool, consumer)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// An event that PostgreSQL refuses as data (22P05) is parked, with its
// consumer, position and reason, in the transaction that moves the checkpoint
// past it; every later event is applied; a rebuild parks the same event; once
// the cause is fixed, a retry applies it and the read model is whole.
func TestDataErrorIsParkedAndTheProjectionMovesOn(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		p := newVersions(t, pool, "parking")
		var broken atomic.Bool
		broken.Store(true)
		p.poison = func(e es.Event) bool { return broken.Load() && e.Stream == "counter-0" && e.Version == 2 }
		reg := prometheus.NewRegistry()
		rt := messaging.NewRuntime(store, pool, fast(messaging.WithRegisterer(reg))...)
		rt.AddProjection(p)
		run := start(t, rt)
		pos := appendN(t, store, 2, 3)
		if err := rt.WaitForProjections(waitCtx(t, 60*time.Second), pos); err != nil {
			t.Fatalf("the projection stopped on the poison event: %v", err)
		}
		if got, want := p.dump(t, pool), "counter-0 1,3\ncounter-1 1,2,3\n"; got != want {
			t.Fatalf("read model:\n%s\nwant:\n%s", got, want)
		}
		ds := parked(t, pool, "parking")
		if len(ds) != 1 || ds[0].Stream != "counter-0" || ds[0].StreamVersion != 2 || ds[0].EventType != "Counted" ||
			ds[0].Position == "" || !strings.Contains(ds[0].Reason, "22P05") {
			t.Fatalf("dead letters = %+v", ds)
		}
		// The counter moves after the commit that the wait saw: give it a moment.
		if got := eventuallyCounter(t, reg, "companin_consumer_parked_total", "parking", 1); got != 1 {
			t.Fatalf("parked_total = %v", got)
		}
		if got := counterValue(t, reg, "companin_consumer_parked_events", "parking"); got != 1 {
			t.Fatalf("parked_events = %v", got)
		}
		if checkpoint(t, pool, "parking") != pos {
			t.Fatalf("checkpoint %s, want %s", checkpoint(t, pool, "parking"), pos)
		}
		run.stop(t)

		// A rebuild meets the same event and parks it again instead of stopping.
		if err := messaging.Rebuild(waitCtx(t, 60*time.Second), store, pool, []messaging.Projection{p}, ""); err != nil {
			t.Fatalf("rebuild: %v", err)
		}
		if got, want := p.dump(t, pool), "counter-0 1,3\ncounter-1 1,2,3\n"; got != want {
			t.Fatalf("read model after rebuild:\n%s\nwant:\n%s", got, want)
		}
		again := parked(t, pool, "parking")
		if len(again) != 1 || again[0].EventID != ds[0].EventID {
			t.Fatalf("dead letters after rebuild = %+v, want the same event as %+v", again, ds)
		}

		// Still broken: the retry fails and the event stays parked.
		res, err := messaging.RetryParked(context.Background(), store, pool, []messaging.Projection{p}, again[0].ID)
		if err != nil || len(res) != 1 || res[0].Resolved || !strings.Contains(res[0].Error, "22P05") {
			t.Fatalf("retry while broken = %+v, %v", res, err)
		}
		// Fixed: the retry applies it, and nothing is parked any more.
		broken.Store(false)
		res, err = messaging.RetryParked(context.Background(), store, pool, []messaging.Projection{p}, 0)
		if err != nil || len(res) != 1 || !res[0].Resolved {
			t.Fatalf("retry after the fix = %+v, %v", res, err)
		}
		if got, want := p.dump(t, pool), "counter-0 1,2,3\ncounter-1 1,2,3\n"; got != want {
			t.Fatalf("read model after retry:\n%s\nwant:\n%s", got, want)
		}
		if ds := parked(t, pool, ""); len(ds) != 0 {
			t.Fatalf("still parked after retry: %+v", ds)
		}
		if _, err := messaging.RetryParked(context.Background(), store, pool, []messaging.Projection{p}, again[0].ID); !errors.Is(err, messaging.ErrNoDeadLetter) {
			t.Fatalf("retry of a resolved event = %v", err)
		}
	})
}

// A failure nobody classified (a bug) is retried; once it has failed
// WithParkAfter times in a row it is parked and the projection moves on.
func TestUnclassifiedFailureIsParkedAfterItsAttempts(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		p := newVersions(t, pool, "buggy")
		var attempts atomic.Int64
		p.poison = func(e es.Event) bool { return e.Stream == "counter-1" && e.Version == 1 }
		p.err = func(es.Event) error { attempts.Add(1); return errors.New("a bug") }
		rt := messaging.NewRuntime(store, pool, fast(messaging.WithParkAfter(4))...)
		rt.AddProjection(p)
		start(t, rt)
		pos := appendN(t, store, 2, 2)
		if err := rt.WaitForProjections(waitCtx(t, 60*time.Second), pos); err != nil {
			t.Fatal(err)
		}
		if got := attempts.Load(); got != 4 {
			t.Fatalf("%d attempts, want 4", got)
		}
		ds := parked(t, pool, "buggy")
		if len(ds) != 1 || !strings.Contains(ds[0].Reason, "failed 4 times: ") || !strings.Contains(ds[0].Reason, "a bug") {
			t.Fatalf("dead letters = %+v", ds)
		}
		if got, want := p.dump(t, pool), "counter-0 1,2\ncounter-1 2\n"; got != want {
			t.Fatalf("read model:\n%s\nwant:\n%s", got, want)
		}
	})
}

// CatchUp parks like the live runner does.
func TestCatchUpParksDataErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		p := newVersions(t, pool, "caught")
		p.poison = func(e es.Event) bool { return e.Version == 1 }
		appendN(t, store, 3, 2)
		if err := messaging.CatchUp(waitCtx(t, 60*time.Second), store, pool, p); err != nil {
			t.Fatal(err)
		}
		if got, want := p.dump(t, pool), "counter-0 2\ncounter-1 2\ncounter-2 2\n"; got != want {
			t.Fatalf("read model:\n%s\nwant:\n%s", got, want)
		}
		if ds := parked(t, pool, "caught"); len(ds) != 3 {
			t.Fatalf("dead letters = %+v", ds)
		}
	})
}
