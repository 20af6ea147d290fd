package notify

import (
	"context"
	"testing"
	"time"

	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
)

// recorder is a Handler that hands what it hears to the test.
type recorder struct {
	notes  chan [2]string // channel, payload
	resets chan bool
}

func newRecorder() *recorder {
	return &recorder{notes: make(chan [2]string, 100), resets: make(chan bool, 100)}
}

func (r *recorder) Notify(channel, payload string) { r.notes <- [2]string{channel, payload} }
func (r *recorder) Reset(listening bool)           { r.resets <- listening }

// within bounds every wait of these tests: a listener that never delivers
// fails them instead of hanging (it is not a speed assertion).
const within = 20 * time.Second

func (r *recorder) listening(t *testing.T) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case ok := <-r.resets:
			if ok {
				return
			}
		case <-timeout:
			t.Fatal("the listener never listened")
		}
	}
}

func (r *recorder) hears(t *testing.T, channel, payload string) {
	t.Helper()
	select {
	case n := <-r.notes:
		if n != [2]string{channel, payload} {
			t.Fatalf("heard %q on %s, want %q on %s", n[1], n[0], payload, channel)
		}
	case <-time.After(within):
		t.Fatalf("%q on %s never arrived", payload, channel)
	}
}

// run runs l until the test ends.
func run(t *testing.T, l *Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-stopped })
}

func send(t *testing.T, pool *pgxpool.Pool, channel, payload string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), "SELECT pg_notify($1, $2)", channel, payload); err != nil {
		t.Fatal(err)
	}
}

// Each handler hears its own channels only, on one connection.
func TestHandlersHearTheirChannels(t *testing.T) {
	pool := pgtest.NewPool(t)
	a, b := newRecorder(), newRecorder()
	l := New(pool.Config().ConnConfig, nil)
	l.Subscribe(a, "companin_test_a", "companin_test_shared")
	l.Subscribe(b, "companin_test_b", "companin_test_shared")
	run(t, l)
	a.listening(t)
	b.listening(t)

	send(t, pool, "companin_test_b", "for b")
	send(t, pool, "companin_test_a", "for a")
	send(t, pool, "companin_test_shared", "for both")
	a.hears(t, "companin_test_a", "for a")
	a.hears(t, "companin_test_shared", "for both")
	b.hears(t, "companin_test_b", "for b")
	b.hears(t, "companin_test_shared", "for both")

	var listeners int
	if err := pool.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&listeners); err != nil {
		t.Fatal(err)
	}
	if listeners != 1 {
		t.Fatalf("%d listening connections, want 1", listeners)
	}
}

// When its connection is killed, the listener tells its handlers that
// notifications may have been lost, reconnects, and delivers again.
func TestListenerRecoversAfterItsConnectionIsKilled(t *testing.T) {
	pool := pgtest.NewPool(t)
	r := newRecorder()
	l := New(pool.Config().ConnConfig, nil)
	l.Subscribe(r, "companin_test")
	run(t, l)
	r.listening(t)
	send(t, pool, "companin_test", "before")
	r.hears(t, "companin_test", "before")

	var killed int
	if err := pool.QueryRow(context.Background(), `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("killed %d listening connections, want 1", killed)
	}
	select {
	case ok := <-r.resets:
		if ok {
			t.Fatal("reset as listening before the lost connection was reported")
		}
	case <-time.After(within):
		t.Fatal("the handler was not told that the connection was lost")
	}
	r.listening(t)
	send(t, pool, "companin_test", "after")
	r.hears(t, "companin_test", "after")
}

// A handler subscribed while the listener runs hears its channel too.
func TestSubscribeWhileRunning(t *testing.T) {
	pool := pgtest.NewPool(t)
	first, late := newRecorder(), newRecorder()
	l := New(pool.Config().ConnConfig, nil)
	run(t, l)
	l.Subscribe(first, "companin_test_first")
	first.listening(t)
	l.Subscribe(late, "companin_test_late")
	late.listening(t)
	send(t, pool, "companin_test_late", "late")
	send(t, pool, "companin_test_first", "first")
	late.hears(t, "companin_test_late", "late")
	first.hears(t, "companin_test_first", "first")
}
