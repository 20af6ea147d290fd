package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/postgres"
	"github.com/companin/companin/adapters/eventstore/shred"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/notify"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/adapters/replies"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/projections"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// testServer is the whole API on a fresh database, with one organization.
// Other areas' tests in this package reuse it:
//
//	ts := newTestServer(t)
//	resp := ts.do(t, "POST", "/api/v1/assistants/", ts.org, `{"name":"Bot"}`)
type testServer struct {
	URL    string
	Server *Server
	Store  es.Store
	Pool   *pgxpool.Pool
	// org is the organization created at start; more with ts.newOrg(t, ...).
	org testOrg
}

// testOrg is an organization with its API credentials.
type testOrg struct {
	ID, ClientID, Secret string
}

// testProjections are the projections the test server runs; every area that
// adds a projection lists it here.
func testProjections() []messaging.Projection {
	return []messaging.Projection{projections.Organizations{}, projections.Knowledge{},
		projections.Assistants{}, projections.Conversations{}, projections.UserContexts{},
		projections.WidgetConfigs{}}
}

type testOption func(*Deps)

// withConfig sets the server's configuration (e.g. a small rate limit).
func withConfig(c Config) testOption { return func(d *Deps) { d.Config = c } }

// newTestServer starts the API through its real router on a fresh, migrated
// PostgreSQL database and creates one organization.
func newTestServer(t testing.TB, opts ...testOption) *testServer {
	t.Helper()
	return newTestServerOn(t, pgtest.NewPool(t), opts...)
}

// newTestServerOn is newTestServer on a migrated pool of the caller's (a
// benchmark's, with a tracer that counts round trips).
func newTestServerOn(t testing.TB, pool *pgxpool.Pool, opts ...testOption) *testServer {
	t.Helper()
	inner, err := postgres.New(context.Background(), pool)
	if err != nil {
		t.Fatalf("event store: %v", err)
	}
	t.Cleanup(inner.Close)
	// As in production: personal fields sealed, keys in subject_keys,
	// erasure destroys the key.
	keys, err := shred.NewPostgresKeys(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := shred.New(inner, keys, shred.Redact(commands.PersonalFields()))
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// One notification listener for the test server, as for a process.
	listener := notify.New(pool.Config().ConnConfig, logger)
	rt := messaging.NewRuntime(store, pool, messaging.WithLeadershipInterval(20*time.Millisecond),
		messaging.WithRegisterer(reg), messaging.WithLogger(logger), messaging.WithListener(listener))
	for _, p := range testProjections() {
		rt.AddProjection(p)
	}
	d := Deps{Store: store, Pool: pool, Runtime: rt, Metrics: reg, Logger: logger, Eraser: store}
	for _, o := range opts {
		o(&d)
	}
	if d.Replies != nil {
		listener.Subscribe(d.Replies, replies.Channel)
	}
	if d.Config.RateLimitPerHour == 0 {
		// Tests that poll would hit the production default; the rate-limit
		// tests set their own small limit.
		d.Config.RateLimitPerHour = 1_000_000
	}
	if d.Config.ReadYourWritesWait == 0 {
		// Tests read right after their writes. On a shared PostgreSQL
		// server every reader of the log waits for the oldest transaction
		// of ANY database (other tests' included), which can take seconds
		// under load: a stuck projection still fails them, a slow horizon
		// does not. The bound itself is tested with its own small value.
		d.Config.ReadYourWritesWait = 15 * time.Second
	}
	srv := New(d)
	listener.Subscribe(srv.CredentialNews(), CredentialsChannel)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{}, 2)
	go func() { defer func() { stopped <- struct{}{} }(); listener.Run(ctx) }()
	go func() {
		defer func() { stopped <- struct{}{} }()
		if err := rt.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("runtime: %v", err)
		}
	}()
	// Registered after the pool's cleanup, so it runs before it.
	t.Cleanup(func() { cancel(); <-stopped; <-stopped })
	// Every answer is checked against /api/v1/openapi.json (contract_test.go);
	// not in benchmarks, whose figures would include the check.
	h := srv.Handler()
	if _, bench := t.(*testing.B); !bench {
		h = checkContract(t, srv, h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	ts := &testServer{URL: hs.URL, Server: srv, Store: store, Pool: pool}
	ts.org = ts.newOrg(t, "Acme")
	return ts
}

// newOrg creates an organization through the command the CLI uses, and waits
// for its credentials to be usable.
func (ts *testServer) newOrg(t testing.TB, name string, allowedOrigins ...string) testOrg {
	t.Helper()
	ctx := context.Background()
	res, err := commands.NewCreateOrganizationHandler(ts.Store).Handle(ctx, commands.CreateOrganization{Name: name, AllowedOrigins: allowedOrigins})
	if err != nil {
		t.Fatalf("create organization: %v", err)
	}
	ts.settle(t, res.Position)
	return testOrg{ID: res.OrganizationID.String(), ClientID: res.ClientID, Secret: res.ClientSecret}
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// json decodes the body into a generic map (fails the test if it is not JSON).
func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// data returns the envelope's data object.
func (r response) data(t testing.TB) map[string]any {
	t.Helper()
	d, ok := r.json(t)["data"].(map[string]any)
	if !ok {
		t.Fatalf("data is not an object: %s", r.Body)
	}
	return d
}

// do sends a request as org (zero testOrg: no credentials) with a JSON body
// ("" for none) and extra headers as "Name", "value" pairs.
func (ts *testServer) do(t testing.TB, method, path string, org testOrg, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if org.ClientID != "" {
		req.Header.Set("X-API-Key", org.ClientID)
		req.Header.Set("X-API-Secret", org.Secret)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	id := uuid.NewString()
	exchanges.Store(id, t)
	defer exchanges.Delete(id)
	req.Header.Set(headerTestExchange, id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// settle waits until the projections have processed the log up to pos: then
// every reader of the log sees it too.
func (ts *testServer) settle(t testing.TB, pos es.Position) {
	t.Helper()
	// Generous: a loaded machine running many tests' databases is slow.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ts.Server.deps.Runtime.WaitForProjections(ctx, pos); err != nil {
		t.Fatalf("settle: %v", err)
	}
}
