package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// BenchmarkListBesideAnotherOrganizationsStreams measures one organization's
// GET /assistants on a platform whose log holds 20,000 events of a third
// organization that keeps writing: first with no streams open ("quiet"),
// then while another organization keeps as many event streams open as the
// cap allows, each following its own log from the start ("streams"). It
// reports the listing's p50 and p99; the issue measured 2 ms becoming
// 1.6-5.7 s with 40 streams when every stream read the whole log of all
// organizations.
//
//	DATABASE_URL=... go test ./adapters/http/ -run '^$' -bench BesideAnother -benchtime 300x
func BenchmarkListBesideAnotherOrganizationsStreams(b *testing.B) {
	const history = 20000
	ts := newTestServer(b, withConfig(Config{RateLimitPerHour: 1 << 30}))
	busy := ts.newOrg(b, "Busy")
	platform := ts.newOrg(b, "Platform")
	if r := ts.do(b, http.MethodPost, "/api/v1/assistants/", ts.org, seedAssistant); r.Status != http.StatusCreated {
		b.Fatalf("assistant: %d %s", r.Status, r.Body)
	}
	ctx := context.Background()
	// The platform's history and traffic: not the streams' business.
	var last es.Position
	appendPlatform := func(n int) {
		evs := make([]es.NewEvent, n)
		for i := range evs {
			evs[i] = es.NewEvent{ID: uuid.New(), Type: "BenchmarkNoted", Data: json.RawMessage(`{"n":1}`),
				Metadata: es.Metadata{OrganizationID: platform.ID}}
		}
		res, err := ts.Store.Append(ctx, "bench-"+uuid.NewString(), es.NoStream, evs...)
		if err != nil {
			b.Fatal(err)
		}
		last = res.Position
	}
	for range history / 500 {
		appendPlatform(500)
	}
	ts.settle(b, last) // the projections have seen the history: they are not what is measured
	traffic, stopTraffic := context.WithCancel(ctx)
	var running sync.WaitGroup
	defer func() { stopTraffic(); running.Wait() }()
	running.Go(func() {
		for traffic.Err() == nil {
			appendPlatform(1)
			time.Sleep(5 * time.Millisecond)
		}
	})
	list := func(b *testing.B) {
		var lat []time.Duration
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			if r := ts.do(b, http.MethodGet, "/api/v1/assistants/", ts.org, ""); r.Status != http.StatusOK {
				b.Fatalf("list: %d %s", r.Status, r.Body)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.Run("quiet", list)
	b.Run("streams", func(b *testing.B) {
		sctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() { cancel(); wg.Wait() }()
		for range ts.Server.cfg.MaxStreamsPerOrg {
			req, _ := http.NewRequestWithContext(sctx, http.MethodGet, ts.URL+"/api/v1/events/stream", nil)
			req.Header.Set("X-API-Key", busy.ClientID)
			req.Header.Set("X-API-Secret", busy.Secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("stream: %v %v", err, resp)
			}
			wg.Go(func() {
				defer resp.Body.Close()
				sc := bufio.NewScanner(resp.Body)
				sc.Buffer(nil, 1<<20)
				for sc.Scan() {
				}
			})
		}
		list(b)
	})
}
