package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/contract"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestOutOfOrderCommitsNeitherSkipNorDuplicate proves guarantees 5 and 6
// where they are hard: writers that pause between their insert and their
// commit (so later transactions commit first), writers that roll back, and
// writers whose backend is killed, all on a few shared streams, while several
// readers follow the global log from their checkpoints.
func TestOutOfOrderCommitsNeitherSkipNorDuplicate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool := pgtest.NewPool(t)
	s, err := New(ctx, pool, WithFallback(time.Second, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const writers, ops, readers = 8, 24, 3
	streams := make([]string, 4)
	for i := range streams {
		streams[i] = "conversation-" + uuid.NewString()
	}
	var (
		mu        sync.Mutex
		committed = map[uuid.UUID]bool{}
		counts    = map[string]int{}
		total     atomic.Int64
	)
	total.Store(-1) // unknown until every writer is done
	commit := func(kind string, batch []es.NewEvent) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range batch {
			committed[e.ID] = true
		}
		counts[kind]++
	}
	enough := func(n int) bool { w := total.Load(); return w >= 0 && int64(n) >= w }

	seen := make([][]es.Event, readers)
	readErrs := make([]error, readers)
	var rw sync.WaitGroup
	for r := range readers {
		rw.Add(1)
		go func() {
			defer rw.Done()
			seen[r], readErrs[r] = contract.Follow(ctx, s, []int{1, 4, 50}[r], enough)
		}()
	}

	var ww sync.WaitGroup
	for w := range writers {
		ww.Add(1)
		go func() {
			defer ww.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			var (
				conn, admin *pgx.Conn
				err         error
			)
			defer func() {
				for _, c := range []*pgx.Conn{conn, admin} {
					if c != nil {
						c.Close(context.Background())
					}
				}
			}()
			for i := range ops {
				batch := make([]es.NewEvent, 1+rng.IntN(3))
				for j := range batch {
					batch[j] = es.NewEvent{ID: uuid.New(), Type: "MessagePosted", Data: json.RawMessage(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))}
				}
				st := streams[rng.IntN(len(streams))]
				kind := []string{"plain", "plain", "slow", "rollback", "killed"}[rng.IntN(5)]
				if kind == "plain" {
					if _, err := s.Append(ctx, st, es.Any, batch...); err != nil {
						t.Errorf("append: %v", err)
						return
					}
					commit(kind, batch)
					continue
				}
				if conn == nil || conn.IsClosed() {
					if conn, err = pgx.ConnectConfig(ctx, pool.Config().ConnConfig); err != nil {
						t.Errorf("connect: %v", err)
						return
					}
				}
				if admin == nil || admin.IsClosed() {
					// Its own connection: the pool's may all be waiting for the lock the victim holds.
					if admin, err = pgx.ConnectConfig(ctx, pool.Config().ConnConfig); err != nil {
						t.Errorf("connect: %v", err)
						return
					}
				}
				if err := pausedAppend(ctx, s, admin.Exec, conn, st, batch, kind, rng); err != nil {
					t.Errorf("%s writer: %v", kind, err)
					return
				}
				if kind == "slow" {
					commit(kind, batch)
				} else {
					commit(kind, nil)
				}
			}
		}()
	}
	ww.Wait()
	mu.Lock()
	total.Store(int64(len(committed)))
	t.Logf("appends: %v, events committed: %d", counts, len(committed))
	mu.Unlock()
	rw.Wait()
	for r, err := range readErrs {
		if err != nil {
			t.Fatalf("reader %d (saw %d of %d): %v", r, len(seen[r]), total.Load(), err)
		}
	}
	contract.CheckReaders(t, committed, seen...)
	for r := range readers {
		if len(seen[r]) == 0 {
			continue
		}
		extra, err := s.ReadAll(ctx, seen[r][len(seen[r])-1].Position, 10, es.Filter{})
		if err != nil || len(extra) > 0 {
			t.Errorf("reader %d: after its last event the log holds %d more (%v)", r, len(extra), err)
		}
	}
	for _, kind := range []string{"slow", "rollback", "killed"} {
		if counts[kind] == 0 {
			t.Errorf("no %s writer ran: the test proved less than it claims", kind)
		}
	}
}

// pausedAppend appends inside a transaction of its own connection and waits
// before ending it; then it commits (slow), rolls back (rollback), or has the
// server kill the backend (killed).
func pausedAppend(ctx context.Context, s *Store, exec func(context.Context, string, ...any) (pgconn.CommandTag, error),
	conn *pgx.Conn, stream string, batch []es.NewEvent, kind string, rng *rand.Rand) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	if _, err := s.append(ctx, tx, stream, es.Any, batch); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	time.Sleep(time.Duration(10+rng.IntN(150)) * time.Millisecond)
	switch kind {
	case "slow":
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		s.committed(batch)
		return nil
	case "rollback":
		return tx.Rollback(ctx)
	default:
		pid := conn.PgConn().PID()
		if _, err := exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err == nil {
			return fmt.Errorf("commit after pg_terminate_backend(%d) succeeded", pid)
		}
		return nil
	}
}
