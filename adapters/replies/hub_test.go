package replies

import (
	"context"
	"testing"
	"time"

	"github.com/companin/companin/adapters/postgres/notify"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Two processes (two pools on one database): the worker's hub publishes, the
// API's hub wakes the waiter of that stream with the text so far.
func TestProgressReachesAnotherProcess(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pools := make([]*pgxpool.Pool, 2)
	for i := range pools {
		p, err := pgxpool.New(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		pools[i] = p
	}
	api, worker := newHub(t, pools[0]), newHub(t, pools[1])

	sub := api.Subscribe("session-1")
	defer sub.Close()
	other := api.Subscribe("session-2")
	defer other.Close()
	reply := uuid.New()
	ctx := context.Background()
	for _, d := range []string{"Grüß", " Gott", ", wie geht's?"} {
		worker.Delta(ctx, "session-1", reply, d)
	}
	worker.Done(ctx, "session-1", reply)

	deadline := time.After(10 * time.Second)
	for {
		if text, done := sub.Text(reply, 0); done {
			if text != "Grüß Gott, wie geht's?" {
				t.Fatalf("text %q", text)
			}
			break
		}
		select {
		case <-sub.C:
		case <-deadline:
			t.Fatal("no progress arrived")
		}
	}
	if rest, _ := sub.Text(reply, 4); rest != " Gott, wie geht's?" {
		t.Fatalf("from rune 4: %q", rest)
	}
	select {
	case <-other.C:
		t.Fatal("another stream's waiter was woken")
	default:
	}
}

// newHub is a process's hub: its own listener, run until the test ends
// (before the pool closes).
func newHub(t *testing.T, pool *pgxpool.Pool) *Hub {
	t.Helper()
	l := notify.New(pool.Config().ConnConfig, nil)
	h := NewHub(pool, nil)
	l.Subscribe(h, Channel)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-stopped })
	return h
}

// When the listening connection is killed, the listener reconnects and
// progress reaches the waiters again.
func TestProgressArrivesAfterTheListenerReconnects(t *testing.T) {
	pool := pgtest.NewPool(t)
	hub := newHub(t, pool)
	sub := hub.Subscribe("session-1") // waits until the listener listens
	defer sub.Close()

	ctx := context.Background()
	var old int
	var killed bool
	if err := pool.QueryRow(ctx, `
		SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&old, &killed); err != nil || !killed {
		t.Fatalf("kill the listening connection: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for { // until a new connection has LISTENed
		var back bool
		if err := pool.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
				AND query LIKE 'LISTEN%' AND state = 'idle' AND pid <> $1)`, old).Scan(&back); err != nil {
			t.Fatal(err)
		}
		if back {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the listener did not reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}

	reply := uuid.New()
	hub.Delta(ctx, "session-1", reply, "wieder da")
	hub.Done(ctx, "session-1", reply)
	timeout := time.After(10 * time.Second)
	for {
		if text, done := sub.Text(reply, 0); done {
			if text != "wieder da" {
				t.Fatalf("text %q", text)
			}
			return
		}
		select {
		case <-sub.C:
		case <-timeout:
			t.Fatal("no progress arrived after the reconnect")
		}
	}
}
