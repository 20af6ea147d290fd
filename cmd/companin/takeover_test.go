package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// sibling is a second `companin serve` deployment on the same database, on
// a port of its own, with extra settings ("NAME=value").
func (in *instance) sibling(extra ...string) *instance {
	s := *in
	s.addr = freeAddr(in.t)
	s.env = nil
	for _, kv := range in.env {
		if !strings.HasPrefix(kv, "COMPANIN_ADDR=") {
			s.env = append(s.env, kv)
		}
	}
	s.env = append(s.env, "COMPANIN_ADDR="+s.addr)
	s.env = append(s.env, extra...)
	return &s
}

// TestSIGKILLedInstanceRepliesAreTakenOverWithinSeconds runs two `serve`
// processes on one database. A's model never answers, so A holds reply jobs
// (and its sessions' later messages wait behind them) until it is killed with
// SIGKILL; B, with the embedded engine, then answers them once A's leases run
// out: within seconds (issue 10: it took the 2-minute lease before), each
// message exactly once.
func TestSIGKILLedInstanceRepliesAreTakenOverWithinSeconds(t *testing.T) {
	begin := time.Now()
	phase := func(what string) { t.Logf("%5.1fs %s", time.Since(begin).Seconds(), what) }
	// A model server that accepts the call and never answers.
	hold := make(chan struct{})
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hold:
		}
	}))
	t.Cleanup(model.Close)
	t.Cleanup(func() { close(hold) }) // runs first

	base := newInstance(t)
	org := base.createOrg("Takeover")
	a := base.sibling("COMPANIN_LLM_BASE_URL="+model.URL, "COMPANIN_LLM_MODEL=never", "COMPANIN_LLM_TIMEOUT=10m")
	b := base.sibling()
	procA := a.serve()
	a.waitReady()
	phase("A ready")

	status, body := a.request("POST", "/api/v1/assistants/", org, map[string]any{"name": "Support"})
	if status != http.StatusCreated {
		t.Fatalf("POST /api/v1/assistants/: %d %s", status, body)
	}
	assistant := idOf(t, body)
	var sessions []string
	messages := map[string]string{} // message id -> session
	for i := 0; i < 6; i++ {
		status, body = a.request("POST", "/api/v1/sessions/", org, map[string]any{"assistant_id": assistant})
		if status != http.StatusCreated {
			t.Fatalf("POST /api/v1/sessions/: %d %s", status, body)
		}
		s := idOf(t, body)
		sessions = append(sessions, s)
		for q := 0; q < 2; q++ {
			status, body = a.request("POST", "/api/v1/sessions/"+s+"/messages?wait=0", org,
				map[string]any{"content": fmt.Sprintf("Question %d of session %d?", q, i)})
			if status/100 != 2 {
				t.Fatalf("POST message: %d %s", status, body)
			}
			messages[idOf(t, body)] = s
		}
	}
	// A takes reply jobs and hangs in its model calls.
	held := func() int {
		return countRows(t, base.db, `SELECT count(*) FROM consumer_jobs WHERE worker = 'reply-worker' AND status = 'pending'
			AND claimed_until > now() AND claimed_by LIKE $1`, "%:"+strconv.Itoa(procA.cmd.Process.Pid)+":%")
	}
	waitUntil(t, time.Minute, "A to hold reply jobs", func() bool { return held() > 0 })

	b.serve()
	b.waitReady()
	phase("B ready")
	answered := func() (map[string]int, int) {
		replies := map[string]int{}
		for _, s := range sessions {
			for _, m := range listMessages(t, b, org, s) {
				if m.Role == "assistant" && m.ReplyTo != "" {
					replies[m.ReplyTo]++
				}
			}
		}
		n := 0
		for id := range messages {
			if replies[id] > 1 {
				t.Fatalf("message %s answered %d times", id, replies[id])
			}
			n += replies[id]
		}
		return replies, n
	}
	// B answers every session A does not hold; A's sessions wait.
	heldNow := held()
	if heldNow == 0 {
		t.Fatal("A no longer holds any job")
	}
	waitUntil(t, 2*time.Minute, "B to answer the sessions A does not hold", func() bool {
		_, n := answered()
		return n >= len(messages)-2*heldNow
	})
	if _, n := answered(); n == len(messages) {
		t.Fatal("every message was answered while A held jobs: the test proves nothing")
	}
	phase(fmt.Sprintf("A holds %d jobs; B answered the rest", heldNow))

	killed := time.Now()
	if err := procA.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-procA.done
	procA.done <- nil
	phase("A killed with SIGKILL")
	waitUntil(t, 2*time.Minute, "B to answer A's messages", func() bool {
		_, n := answered()
		return n == len(messages)
	})
	took := time.Since(killed)
	phase(fmt.Sprintf("every message answered exactly once, %.1fs after the kill", took.Seconds()))
	if took > 15*time.Second {
		t.Fatalf("the survivor answered the dead instance's messages %v after the kill; the aim is under 15s", took)
	}
}

func idOf(t *testing.T, body []byte) string {
	t.Helper()
	var env struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Data.ID == "" {
		t.Fatalf("no id in %s (%v)", body, err)
	}
	return env.Data.ID
}

func countRows(t *testing.T, dbURL, query string, args ...any) int {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitUntil polls cond (tests only) until it holds or d has passed.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
