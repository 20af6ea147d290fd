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
