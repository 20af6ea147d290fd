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
	in := newInstance(t)
	org := in.createOrg("Crash")
	first := in.serve()
	in.waitReady()
	if status, body := in.request("POST", "/api/v1/assistants/", org, map[string]any{"name": "probe"}); status == http.StatusNotFound {
		t.Skipf("no write endpoint yet (POST /api/v1/assistants/: %d %s)", status, body)
	} else if status != http.StatusCreated {
		t.Fatalf("POST /api/v1/assistants/: %d %s", status, body)
	}

	// Writers post until the server dies; each remembers what was acknowledged.
	var (
		mu    sync.Mutex
		acked = map[string]string{} // assistant id -> name
		sent  int
	)
	ctx, stopWriting := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("crash-%d-%d", w, i)
				id, ok := postAssistant(client, in.addr, org, name)
				mu.Lock()
				sent++
				if ok {
					acked[id] = name
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
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.done
	first.done <- nil
	stopWriting()
	wg.Wait()
	if len(acked) < 10 {
		t.Fatalf("only %d of %d writes acknowledged before the kill", len(acked), sent)
	}
	t.Logf("%d writes acknowledged of %d sent before SIGKILL", len(acked), sent)

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

	in.serve()
	in.waitReady()
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
	listed := listAssistants(t, in, org)
	if len(listed) != len(created) {
		t.Errorf("read model lists %d assistants, the log created %d", len(listed), len(created))
	}
}

func postAssistant(client *http.Client, addr string, org credentials, name string) (string, bool) {
	b, _ := json.Marshal(map[string]any{"name": name})
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/assistants/", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", org.ClientID)
	req.Header.Set("X-API-Secret", org.ClientSecret)
	resp, err := client.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var env struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if resp.StatusCode/100 != 2 || json.NewDecoder(resp.Body).Decode(&env) != nil || env.Data.ID == "" {
		return "", false
	}
	return env.Data.ID, true
}

func listAssistants(t *testing.T, in *instance, org credentials) []string {
	var ids []string
	cursor := ""
	for page := 0; page < 1000; page++ {
		path := "/api/v1/assistants/?limit=100"
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
