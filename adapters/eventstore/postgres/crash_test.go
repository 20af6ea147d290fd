package postgres

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

const crashChildEnv = "COMPANIN_EVENTSTORE_CRASH_CHILD_DB"

// TestAcknowledgedAppendsSurviveSIGKILL proves guarantee 4: a child process
// (this test binary again) appends from several goroutines and prints the id
// of every append the store acknowledged; it is killed with SIGKILL in the
// middle of its writes. Every acknowledged id must be in the log afterwards.
func TestAcknowledgedAppendsSurviveSIGKILL(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("this process is the child")
	}
	pool := pgtest.NewPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChildAppends$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+pool.Config().ConnString())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []uuid.UUID
	lines := bufio.NewScanner(out)
	killed := false
	for lines.Scan() {
		id, ok := strings.CutPrefix(lines.Text(), "ack ")
		if !ok {
			continue
		}
		u, err := uuid.Parse(id)
		if err != nil {
			continue // a line cut short by the kill
		}
		acked = append(acked, u)
		if len(acked) == 300 && !killed {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("the child ended before it was killed (%v) after %d acknowledged appends", err, len(acked))
	}
	var stored int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM events WHERE event_id = ANY($1)", acked).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	var total int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&total); err != nil {
		t.Fatal(err)
	}
	t.Logf("acknowledged %d appends before SIGKILL; %d events in the log", len(acked), total)
	if stored != len(acked) {
		t.Fatalf("%d of %d acknowledged events are missing after SIGKILL", len(acked)-stored, len(acked))
	}
}

// TestCrashChildAppends is the child of TestAcknowledgedAppendsSurviveSIGKILL;
// it does nothing in a normal test run.
func TestCrashChildAppends(t *testing.T) {
	dbURL := os.Getenv(crashChildEnv)
	if dbURL == "" {
		t.Skip("runs only as the child of TestAcknowledgedAppendsSurviveSIGKILL")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				e := es.NewEvent{ID: uuid.New(), Type: "MessagePosted", Data: []byte(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))}
				if _, err := s.Append(ctx, fmt.Sprintf("session-%d-%d", w, i%10), es.Any, e); err != nil {
					fmt.Fprintln(os.Stderr, "child append:", err)
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s\n", e.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}
