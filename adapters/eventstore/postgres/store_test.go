package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/contract"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(context.Background(), pgtest.NewPool(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestContract(t *testing.T) {
	contract.Run(t, func(t *testing.T) es.Store { return newStore(t) })
}

// TestGlobalOrderIsNumericAndSurvivesRestore: transaction ids order the log
// as numbers (999 before 1000), and after a logical restore, where the server
// hands out ids below the restored ones, New raises the epoch so that new
// events follow the restored ones and old checkpoints stay valid.
func TestGlobalOrderIsNumericAndSurvivesRestore(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	insert := func(txid, stream string) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO events (epoch, transaction_id, event_id, stream, version, type)
			VALUES (0, $1::text::xid8, gen_random_uuid(), $2, 1, 'Restored')`, txid, stream); err != nil {
			t.Fatal(err)
		}
	}
	insert("1000", "session-b")
	insert("999", "session-a")
	s := newStoreOn(t, pool)
	all, err := s.ReadAll(ctx, es.Start, 0, es.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Stream != "session-a" || all[1].Stream != "session-b" {
		t.Fatalf("read %v, want the event of transaction 999 before that of 1000", all)
	}
	if head, err := s.Head(ctx); err != nil || head != all[1].Position {
		t.Fatalf("head %q (%v), want the event of transaction 1000 at %q", head, err, all[1].Position)
	}

	// Rows restored from a server that had handed out far more transaction ids.
	insert("90000000000", "session-restored")
	s = newStoreOn(t, pool)
	var epoch int
	if err := pool.QueryRow(ctx, "SELECT epoch FROM event_store_epoch").Scan(&epoch); err != nil || epoch != 1 {
		t.Fatalf("epoch %d (%v), want it raised to 1", epoch, err)
	}
	res, err := s.Append(ctx, "session-new", es.NoStream, es.NewEvent{ID: uuid.New(), Type: "SessionStarted"})
	if err != nil {
		t.Fatal(err)
	}
	checkpoint := all[1].Position
	var after []es.Event
	for len(after) < 2 {
		if after, err = s.ReadAll(ctx, checkpoint, 0, es.Filter{}); err != nil {
			t.Fatal(err)
		}
		if len(after) < 2 {
			if err := s.WaitForEvents(ctx, checkpoint); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(after) != 2 || after[0].Stream != "session-restored" || after[1].Stream != "session-new" || after[1].Position != res.Position {
		t.Fatalf("after the old checkpoint: %v, want the restored event, then the new one", after)
	}
	if _, err := New(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, "SELECT epoch FROM event_store_epoch").Scan(&epoch); err != nil || epoch != 1 {
		t.Fatalf("epoch %d (%v) after a second start, want 1", epoch, err)
	}
}

func newStoreOn(t *testing.T, pool *pgxpool.Pool) *Store {
	t.Helper()
	s, err := New(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestOneOrganizationIsReadThroughItsIndex: with another organization's
// events filling the log, reading and waiting for one organization walk that
// organization's index, never the whole table: a stream's cost follows its
// own organization's events, not the platform's.
func TestOneOrganizationIsReadThroughItsIndex(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO events (epoch, event_id, stream, version, organization_id, type, data)
		SELECT 0, gen_random_uuid(), 'session-' || i, 1, 'org-busy', 'SessionTouched', '{"n":1}'
		FROM generate_series(1, 20000) AS i`); err != nil {
		t.Fatal(err)
	}
	mine := es.NewEvent{ID: uuid.New(), Type: "SessionTouched", Data: []byte(`{}`), Metadata: es.Metadata{OrganizationID: "org-quiet"}}
	if _, err := s.Append(ctx, "session-"+uuid.NewString(), es.NoStream, mine); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE events`); err != nil {
		t.Fatal(err)
	}
	f := es.Filter{OrganizationID: "org-quiet"}
	start, _ := parsePosition(es.Start)
	read, readArgs := readAllSQL(start, 500, f)
	wait, waitArgs := waitSQL(start, f)
	for name, q := range map[string]struct {
		sql  string
		args []any
	}{"read": {read, readArgs}, "wait": {wait, waitArgs}} {
		rows, err := s.pool.Query(ctx, "EXPLAIN "+q.sql, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(line + "\n")
		}
		rows.Close()
		if !strings.Contains(plan.String(), "events_organization_position_idx") || strings.Contains(plan.String(), "Seq Scan on events") {
			t.Errorf("%s of one organization does not walk its index:\n%s", name, plan.String())
		}
	}
	// The event shows once every older transaction on the server ended.
	deadline, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		got, err := s.ReadAll(ctx, es.Start, 500, f)
		if err != nil || len(got) > 1 || len(got) == 1 && got[0].ID != mine.ID {
			t.Fatalf("read %d events (%v), want only the quiet organization's one", len(got), err)
		}
		if len(got) == 1 {
			return
		}
		if err := es.WaitFor(deadline, s, es.Start, f); err != nil {
			t.Fatalf("the quiet organization's event never showed: %v", err)
		}
	}
}
