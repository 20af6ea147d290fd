package messaging_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// probe is a test projection for the batched writes: each event inserts a
// row (no ON CONFLICT: an event applied twice would fail with a unique
// violation and be parked, which the tests would see), and every third
// version first reads what the events before it wrote (its stream's latest
// version), so reads must see the writes still queued. The events named in
// poison fail in one of four ways.
type probe struct {
	emptied
	name   string
	poison map[string]string // "stream@version" → "cannot", "data", "encode", "swallow"
}

func newProbe(t *testing.T, pool *pgxpool.Pool, name string, poison map[string]string) *probe {
	t.Helper()
	p := &probe{emptied: emptied{"rmp_" + name}, name: name, poison: poison}
	_, err := pool.Exec(context.Background(), fmt.Sprintf(`CREATE TABLE %s (
		stream text, version bigint, seen bigint, data jsonb, PRIMARY KEY (stream, version))`, p.table))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *probe) Name() string { return p.name }

func (p *probe) Handle(ctx context.Context, tx pgx.Tx, e es.Event) error {
	var data any = `{"ok":true}`
	switch p.poison[fmt.Sprintf("%s@%d", e.Stream, e.Version)] {
	case "cannot": // the projection says so
		return fmt.Errorf("%w: not this one", messaging.ErrCannotApply)
	case "data": // PostgreSQL refuses it (22P05) when the batch is sent
		data = `{"x":"a\u0000b"}`
	case "encode": // pgx cannot encode it: the batch fails without saying which statement
		data = map[string]any{"ch": make(chan int)}
	case "swallow": // refused by PostgreSQL, and the projection ignores the error
		_, _ = tx.Exec(ctx, "INSERT INTO "+p.table+" (stream, version, seen, data) VALUES ($1, $2, 0, $3::jsonb)",
			e.Stream, int64(e.Version), `{"x":"a\u0000b"}`)
		return nil
	}
	seen := int64(-1)
	if e.Version%3 == 0 {
		if err := tx.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM "+p.table+" WHERE stream = $1", e.Stream).Scan(&seen); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, "INSERT INTO "+p.table+" (stream, version, seen, data) VALUES ($1, $2, $3, $4)",
		e.Stream, int64(e.Version), seen, data)
	return err
}

// emptied is a test read model's table, which Reset empties.
type emptied struct{ table string }

func (m emptied) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "DELETE FROM "+m.table)
	return err
}

// dump lists the rows as stream@version:seen, in order.
func (p *probe) dump(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var out string
	err := pool.QueryRow(context.Background(), `SELECT COALESCE(string_agg(stream || '@' || version || ':' || seen, ' '
		ORDER BY stream, version), '') FROM `+p.table).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// want is the read model expected when every event but the poisoned ones
// is applied once: an event that reads sees the latest version applied before it.
func (p *probe) want(streams, perStream int) string {
	var out []string
	for s := 0; s < streams; s++ {
		stream := fmt.Sprintf("counter-%d", s)
		latest := int64(0)
		for v := 1; v <= perStream; v++ {
			if p.poison[fmt.Sprintf("%s@%d", stream, v)] != "" {
				continue
			}
			seen := int64(-1)
			if v%3 == 0 {
				seen = latest
			}
			out = append(out, fmt.Sprintf("%s@%d:%d", stream, v, seen))
			latest = int64(v)
		}
	}
	return strings.Join(out, " ")
}

func (p *probe) poisoned() string {
	var out []string
	for k := range p.poison {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func parkedEvents(t *testing.T, pool *pgxpool.Pool, consumer string) string {
	t.Helper()
	var out []string
	for _, d := range parked(t, pool, consumer) {
		out = append(out, fmt.Sprintf("%s@%d", d.Stream, d.StreamVersion))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

var batchPoison = map[string]string{
	"counter-1@3": "cannot",
	"counter-2@5": "data",
	"counter-4@7": "encode",
	"counter-3@4": "swallow",
}

// Many events in one transaction, four of them failing in different ways in
// the middle of it: each failure is pinned on its own event, which alone is
// parked; every other event is applied exactly once, and the events that
// read see the writes of the events before them, still queued or not.
func TestBatchedCatchUpParksEachPoisonAloneAndAppliesTheRestOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		p := newProbe(t, pool, "probe_catchup", batchPoison)
		appendN(t, store, 6, 10)
		if err := messaging.CatchUp(waitCtx(t, 60*time.Second), store, pool, p); err != nil {
			t.Fatal(err)
		}
		if got, want := p.dump(t, pool), p.want(6, 10); got != want {
			t.Fatalf("read model:\n%s\nwant:\n%s", got, want)
		}
		if got, want := parkedEvents(t, pool, p.name), p.poisoned(); got != want {
			t.Fatalf("parked %s, want %s", got, want)
		}
		// A rebuild gives the same read model and parks the same events.
		if err := messaging.Rebuild(waitCtx(t, 60*time.Second), store, pool, []messaging.Projection{p}, ""); err != nil {
			t.Fatal(err)
		}
		if got, want := p.dump(t, pool), p.want(6, 10); got != want {
			t.Fatalf("read model after rebuild:\n%s\nwant:\n%s", got, want)
		}
		if got, want := parkedEvents(t, pool, p.name), p.poisoned(); got != want {
			t.Fatalf("parked after rebuild %s, want %s", got, want)
		}
	})
}

// The live runner, given a backlog it applies a page at a time, does the same.
func TestBatchedLiveRunnerParksEachPoisonAloneAndAppliesTheRestOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, pool *pgxpool.Pool, store es.Store) {
		p := newProbe(t, pool, "probe_live", batchPoison)
		pos := appendN(t, store, 6, 10)
		rt := messaging.NewRuntime(store, pool, fast(messaging.WithParkAfter(3))...)
		rt.AddProjection(p)
		start(t, rt)
		if err := rt.WaitForProjections(waitCtx(t, 60*time.Second), pos); err != nil {
			t.Fatal(err)
		}
		if got, want := p.dump(t, pool), p.want(6, 10); got != want {
			t.Fatalf("read model:\n%s\nwant:\n%s", got, want)
		}
		if got, want := parkedEvents(t, pool, p.name), p.poisoned(); got != want {
			t.Fatalf("parked %s, want %s", got, want)
		}
	})
}
