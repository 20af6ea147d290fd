package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPostMessage posts user messages (?wait=0: no waiting for the
// reply) from 16 concurrent clients, each in its own session, through the
// real router, event store and read-your-writes wait, and reports requests
// per second and the 99th percentile latency.
//
//	DATABASE_URL=... go test ./adapters/http/ -run '^$' -bench PostMessage -benchtime 2000x
func BenchmarkPostMessage(b *testing.B) {
	const clients = 16
	ts := newTestServer(b, withConfig(Config{RateLimitPerHour: 1 << 30}))
	post := func(path, body string) map[string]any {
		r := ts.do(b, http.MethodPost, path, ts.org, body)
		if r.Status/100 != 2 {
			b.Fatalf("%s: %d %s", path, r.Status, r.Body)
		}
		return r.data(b)
	}
	asst := post("/api/v1/assistants/", seedAssistant)["id"].(string)
	sessions := make([]string, clients)
	for i := range sessions {
		sessions[i] = post("/api/v1/sessions/", `{"assistant_id":"`+asst+`"}`)["id"].(string)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	body, _ := json.Marshal(map[string]any{"content": "Hello, I need help with my order", "metadata": map[string]any{"user_type": "customer"}})
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		next      atomic.Int64
		failed    atomic.Int64
		wg        sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			url := ts.URL + "/api/v1/sessions/" + sessions[c] + "/messages?wait=0"
			var mine []time.Duration
			for next.Add(1) <= int64(b.N) {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-API-Key", ts.org.ClientID)
				req.Header.Set("X-API-Secret", ts.org.Secret)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					failed.Add(1)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed", n, b.N)
	}
	slices.Sort(latencies)
	p99 := latencies[min(len(latencies)-1, len(latencies)*99/100)]
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}
