package projections_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/postgres"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/organization"
	"github.com/companin/companin/projections"
	"github.com/companin/companin/queries"
)

func TestOrganizationsProjectionFindsClientsAndRebuilds(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store, err := postgres.New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	created, err := commands.NewCreateOrganizationHandler(store).Handle(ctx,
		commands.CreateOrganization{Name: "Acme", AllowedOrigins: []string{"https://shop.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	p := projections.Organizations{}
	find := queries.NewFindClientHandler(pool)
	if _, err := find.Handle(ctx, created.ClientID); !errors.Is(err, queries.ErrClientNotFound) {
		t.Fatalf("before projecting: %v", err)
	}
	// One CatchUp may stop short: the log shows only what lies below the
	// oldest transaction open on the server, which other tests hold back.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := messaging.CatchUp(ctx, store, pool, p); err != nil {
			t.Fatal(err)
		}
		if _, err := find.Handle(ctx, created.ClientID); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	check := func() {
		t.Helper()
		c, err := find.Handle(ctx, created.ClientID)
		if err != nil {
			t.Fatal(err)
		}
		if c.OrganizationID != created.OrganizationID || !organization.SecretMatches(created.ClientSecret, c.SecretHash) ||
			len(c.AllowedOrigins) != 1 || c.AllowedOrigins[0] != "https://shop.example.com" {
			t.Fatalf("client %+v", c)
		}
	}
	check()
	if err := messaging.Rebuild(ctx, store, pool, []messaging.Projection{p}, p.Name()); err != nil {
		t.Fatal(err)
	}
	check()
	if _, err := find.Handle(ctx, "ci_unknown"); !errors.Is(err, queries.ErrClientNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}
