package httpapi

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// Two instances taking an organization's quota in blocks, many requests at
// once on both: exactly the limit gets through, never more (blocks are
// numbered once from the shared counter) and, as both keep being asked,
// never less.
func TestRateLimitBlocksNeverExceedTheLimitAcrossInstances(t *testing.T) {
	t.Parallel()
	const limit = 100
	ts := newTestServer(t, withConfig(Config{RateLimitPerHour: limit}))
	a := ts.Server
	b := New(Deps{Store: ts.Store, Pool: ts.Pool, Runtime: ts.Server.deps.Runtime, Config: Config{RateLimitPerHour: limit}})
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			srv := a
			if g%2 == 1 {
				srv = b
			}
			for range 40 {
				switch r := serve(t, srv, http.MethodGet, "/api/v1/assistants/", ts.org); r.Status {
				case 200:
					ok.Add(1)
				case 429:
					refused.Add(1)
				default:
					t.Errorf("status %d: %s", r.Status, r.Body)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != limit || refused.Load() != 8*40-limit {
		t.Fatalf("%d let through, %d refused; want %d and %d", ok.Load(), refused.Load(), limit, 8*40-limit)
	}
}

// An instance that stops gives its unused block back: another instance can
// then use the whole rest of the budget, and not one request more.
func TestRateLimitBlockReturnedOnShutdown(t *testing.T) {
	t.Parallel()
	const limit = 100
	ts := newTestServer(t, withConfig(Config{RateLimitPerHour: limit}))
	a := New(Deps{Store: ts.Store, Pool: ts.Pool, Runtime: ts.Server.deps.Runtime, Config: Config{RateLimitPerHour: limit}})
	b := New(Deps{Store: ts.Store, Pool: ts.Pool, Runtime: ts.Server.deps.Runtime, Config: Config{RateLimitPerHour: limit}})
	for i := 1; i <= 10; i++ {
		r := serve(t, a, http.MethodGet, "/api/v1/assistants/", ts.org)
		if r.Status != 200 || r.Header.Get("X-RateLimit-Remaining") != itoa(limit-i) {
			t.Fatalf("request %d on a: %d, remaining %q", i, r.Status, r.Header.Get("X-RateLimit-Remaining"))
		}
	}
	if err := a.ReturnQuota(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 11; i <= limit; i++ {
		r := serve(t, b, http.MethodGet, "/api/v1/assistants/", ts.org)
		if r.Status != 200 || r.Header.Get("X-RateLimit-Remaining") != itoa(limit-i) {
			t.Fatalf("request %d on b: %d, remaining %q: %s", i, r.Status, r.Header.Get("X-RateLimit-Remaining"), r.Body)
		}
	}
	if r := serve(t, b, http.MethodGet, "/api/v1/assistants/", ts.org); r.Status != 429 || r.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("request %d on b: %d, remaining %q", limit+1, r.Status, r.Header.Get("X-RateLimit-Remaining"))
	}
}
