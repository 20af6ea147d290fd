package httpapi

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/companin/companin/adapters/postgres/notify"
	"github.com/companin/companin/commands"
	"github.com/google/uuid"
)

// readiness is a notification handler that tells when its listener listens.
type readiness chan struct{}

func (readiness) Notify(string, string) {}
func (r readiness) Reset(listening bool) {
	if listening {
		select {
		case r <- struct{}{}:
		default:
		}
	}
}

// A revoked secret is refused by every instance as soon as the revocation is
// announced, although each instance would trust its cached lookup for an
// hour: the announcement, heard through each process's notification
// listener, empties the caches.
func TestRevokedCredentialsAreRefusedOnEveryInstanceOnceAnnounced(t *testing.T) {
	t.Parallel()
	cfg := Config{CredentialCacheTTL: time.Hour, RateLimitPerHour: 1_000_000}
	ts := newTestServer(t, withConfig(cfg))
	a := ts.Server
	// Another instance: its own server and its own listener, on the same database.
	b := New(Deps{Store: ts.Store, Pool: ts.Pool, Runtime: a.deps.Runtime, Config: cfg})
	l := notify.New(ts.Pool.Config().ConnConfig, nil)
	l.Subscribe(b.CredentialNews(), CredentialsChannel)
	ready := make(readiness, 1)
	l.Subscribe(ready, "companin_test_ready")
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-stopped })
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("the second instance's listener never listened")
	}

	for _, srv := range []*Server{a, b} {
		if r := serve(t, srv, http.MethodGet, "/api/v1/assistants/", ts.org); r.Status != http.StatusOK {
			t.Fatalf("before revoking: %d %s", r.Status, r.Body)
		}
	}
	pos, err := commands.RevokeCredentialsHandler{Store: ts.Store}.Handle(context.Background(),
		commands.RevokeCredentials{OrganizationID: uuid.MustParse(ts.org.ID), ClientID: ts.org.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	ts.settle(t, pos)
	// The read model refuses the client; the instances' caches do not know yet.
	for _, srv := range []*Server{a, b} {
		if r := serve(t, srv, http.MethodGet, "/api/v1/assistants/", ts.org); r.Status != http.StatusOK {
			t.Fatalf("cached before the announcement: %d %s", r.Status, r.Body)
		}
	}

	if err := AnnounceCredentials(context.Background(), ts.Pool, ts.org.ClientID); err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*Server{a, b} {
		deadline := time.Now().Add(20 * time.Second) // far below the cache's hour
		for {
			r := serve(t, srv, http.MethodGet, "/api/v1/assistants/", ts.org)
			if r.Status == http.StatusUnauthorized {
				break
			}
			if r.Status != http.StatusOK || time.Now().After(deadline) {
				t.Fatalf("after the announcement: %d %s", r.Status, r.Body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
