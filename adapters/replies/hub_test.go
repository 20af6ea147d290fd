package replies

import (
	"context"
	"testing"
	"time"

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
	api, worker := For(pools[0]), For(pools[1])
	t.Cleanup(api.Close)
	t.Cleanup(worker.Close)
	if For(pools[0]) != api {
		t.Fatal("one hub per pool")
	}

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
