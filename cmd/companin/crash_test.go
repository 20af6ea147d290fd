package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/companin/companin/domain/assistant"
	"github.com/jackc/pgx/v5"
)

// TestSIGKILLDuringWritesLosesNothingAcknowledged kills `companin serve`
// with SIGKILL while clients write, restarts it, and checks DESIGN.md's
// promise: every write that was acknowledged (2xx) is in the log and in the
// read models, nothing is applied twice, and the consumers resume from their
// checkpoints instead of starting over.
func TestSIGKILLDuringWritesLosesNothingAcknowledged(t *testing.T) {
	start := time.Now()
	phase := func(what string) { t.Logf("%5.1fs %s", time.Since(start).Seconds(), what) }
	in := newInstance(t)
	org := in.createOrg("Crash")
	phase("organization created")
	first := in.serve()
	in.waitReady()
	status, body := in.request("POST", "/api/v1/assistants/", org, map[string]any{"name": "probe"})
	if status == http.StatusNotFound {
		t.Skipf("no write endpoint yet (POST /api/v1/assistants/: %d %s)", status, body)
	}
	if status != http.StatusCreated {
		t.Fatalf("POST /api/v1/assistants/: %d %s", status, body)
	}
	var probe struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &probe)
	// One session per message writer: two messages racing into one session
	// are a different matter (an optimistic-concurrency conflict).
	var sessions []string
	for w := 0; w < 4; w++ {
		status, body = in.request("POST", "/api/v1/sessions/", org, map[string]any{"assistant_id": probe.Data.ID})
		if status != http.StatusCreated {
			t.Fatalf("POST /api/v1/sessions/: %d %s", status, body)
		}
		var sess struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &sess)
		sessions = append(sessions, sess.Data.ID)
	}

	// Writers post until the server dies: assistants, and messages into one
	// session; each remembers what was acknowledged. A server that answers
	// at all must answer 2xx: only the kill may make a write fail.
	var (
		mu       sync.Mutex
		acked    = map[string]string{} // assistant id -> name
		messages = map[string]bool{}   // acknowledged message ids
		sent     int
		bad      []string
	)
	ctx, stopWriting := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			isMessage := w%2 == 1
			path := "/api/v1/assistants/"
			if isMessage {
				path = "/api/v1/sessions/" + sessions[w/2] + "/messages?wait=0"
			}
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("crash-%d-%d", w, i)
				body := map[string]any{"name": name}
				if isMessage {
					body = map[string]any{"content": "Question " + name + "?"}
				}
				id, status := post(client, in.addr+path, org, body)
				mu.Lock()
				sent++
				switch {
				case status/100 == 2 && isMessage:
					messages[id] = true
				case status/100 == 2:
					acked[id] = name
				case status != 0:
					bad = append(bad, fmt.Sprintf("%s: %d", name, status))
				}
				mu.Unlock()
			}
		}(w)
	}
	// Kill once a good number of writes went through, with more in flight.
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 60 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	phase("SIGKILL")
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.done
	first.done <- nil
	stopWriting()
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("writes answered with an error before the kill: %v", bad)
	}
	if len(acked) < 10 || len(messages) < 10 {
		t.Fatalf("only %d assistants and %d messages acknowledged (of %d writes) before the kill", len(acked), len(messages), sent)
	}
	t.Logf("%d assistants and %d messages acknowledged of %d writes sent before SIGKILL", len(acked), len(messages), sent)

	// The log has every acknowledged write, before any server runs again.
	created := map[string]int{}
	for _, e := range in.export("--types", assistant.TypeCreated, "--organization", org.OrganizationID) {
		created[e.Stream]++
	}
	for id := range acked {
		if created["assistant-"+id] != 1 {
			t.Errorf("acknowledged assistant %s: %d AssistantCreated events in the log, want 1", id, created["assistant-"+id])
		}
	}
	before := checkpoints(t, in.db)
	phase("log checked")

	in.serve()
	in.waitReady()
	phase("restarted and ready")
	// Consumers resumed: no checkpoint ever goes back behind where it was at the kill.
	for i := 0; i < 20; i++ {
		for name, pos := range checkpoints(t, in.db) {
			if pos < before[name] {
				t.Fatalf("consumer %s restarted from %q, behind its checkpoint %q", name, pos, before[name])
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	// Every acknowledged write is readable, and the read model holds each
	// created assistant exactly once.
	for id, name := range acked {
		status, body := in.request("GET", "/api/v1/assistants/"+id, org, nil)
		if status != http.StatusOK {
			t.Errorf("acknowledged assistant %s (%s): GET %d %s", id, name, status, body)
		}
	}
	// A write whose commit reached PostgreSQL just before the kill commits
	// without being acknowledged: count the log again now.
	logged := map[string]bool{}
	for _, e := range in.export("--types", assistant.TypeCreated, "--organization", org.OrganizationID) {
		if logged[e.Stream] {
			t.Errorf("%s created twice in the log", e.Stream)
		}
		logged[e.Stream] = true
	}
	listed := list(t, in, org, "/api/v1/assistants/")
	if len(listed) != len(logged) {
		t.Errorf("read model lists %d assistants, the log created %d", len(listed), len(logged))
	}
	for _, id := range listed {
		if !logged["assistant-"+id] {
			t.Errorf("read model lists assistant %s that the log never created", id)
		}
	}
	// Every acknowledged message is there once, and the reply worker, which
	// resumes its jobs after the restart, answers each exactly once.
	deadline = time.Now().Add(3 * time.Minute)
	for {
		seen, replies := map[string]int{}, map[string]int{}
		for _, sess := range sessions {
			for _, m := range listMessages(t, in, org, sess) {
				seen[m.ID]++
				if m.Role == "assistant" && m.ReplyTo != "" {
					replies[m.ReplyTo]++
				}
			}
		}
		missing := 0
		for id := range messages {
			if seen[id] != 1 {
				t.Fatalf("acknowledged message %s listed %d times, want once", id, seen[id])
			}
			if replies[id] > 1 {
				t.Fatalf("message %s answered %d times", id, replies[id])
			}
			if replies[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			phase("every message answered")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged messages still unanswered after the restart", missing, len(messages))
		}
		time.Sleep(time.Second)
	}
}

type listedMessage struct {
	ID      string `json:"id"`
	Role    string `json:"role"`
	ReplyTo string `json:"reply_to"`
}

func listMessages(t *testing.T, in *instance, org credentials, session string) []listedMessage {
	var all []listedMessage
	cursor := ""
	for page := 0; page < 1000; page++ {
		path := "/api/v1/sessions/" + session + "/messages?limit=100"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		status, body := in.request("GET", path, org, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		var env struct {
			Data []listedMessage `json:"data"`
			Meta struct {
				HasMore    bool   `json:"has_more"`
				NextCursor string `json:"next_cursor"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatalf("list: %v: %s", err, body)
		}
		all = append(all, env.Data...)
		if !env.Meta.HasMore {
			return all
		}
		cursor = env.Meta.NextCursor
	}
	t.Fatal("list never ends")
	return nil
}

// post sends one write and returns the new resource's id and the status (0:
// no answer).
func post(client *http.Client, url string, org credentials, body map[string]any) (string, int) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "http://"+url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", org.ClientID)
	req.Header.Set("X-API-Secret", org.ClientSecret)
	resp, err := client.Do(req)
	if err != nil {
		return "", 0
	}
	defer resp.Body.Close()
	var env struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return "", 0 // cut off mid-answer by the kill
	}
	if resp.StatusCode/100 == 2 && env.Data.ID == "" {
		return "", 0
	}
	return env.Data.ID, resp.StatusCode
}

// list pages through a list endpoint and returns the ids of its items.
func list(t *testing.T, in *instance, org credentials, route string) []string {
	var ids []string
	cursor := ""
	for page := 0; page < 1000; page++ {
		path := route + "?limit=100"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		status, body := in.request("GET", path, org, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		var env struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			Meta struct {
				HasMore    bool   `json:"has_more"`
				NextCursor string `json:"next_cursor"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatalf("list: %v: %s", err, body)
		}
		for _, a := range env.Data {
			ids = append(ids, a.ID)
		}
		if !env.Meta.HasMore {
			return ids
		}
		cursor = env.Meta.NextCursor
	}
	t.Fatal("list never ends")
	return nil
}

// checkpoints reads every consumer's position (table of the consumer runtime).
func checkpoints(t *testing.T, dbURL string) map[string]string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT name, position FROM consumer_checkpoints")
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (kv [2]string, err error) {
		err = r.Scan(&kv[0], &kv[1])
		return kv, err
	})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, kv := range out {
		m[kv[0]] = kv[1]
	}
	return m
}
