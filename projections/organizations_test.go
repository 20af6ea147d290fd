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

// Origins and revocations reach the read model, and a rebuild gives the same.
func TestOrganizationsProjectionAppliesOriginsAndRevocations(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store, err := postgres.New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	created, err := commands.NewCreateOrganizationHandler(store).Handle(ctx,
		commands.CreateOrganization{Name: "Acme", AllowedOrigins: []string{"https://a.example"}})
	if err != nil {
		t.Fatal(err)
	}
	upd, err := commands.UpdateOrganizationOriginsHandler{Store: store}.Handle(ctx, commands.UpdateOrganizationOrigins{
		OrganizationID: created.OrganizationID, Add: []string{"https://b.example", "https://a.example"}, Remove: []string{"https://a.example"}})
	if err != nil || len(upd.AllowedOrigins) != 1 || upd.AllowedOrigins[0] != "https://b.example" {
		t.Fatalf("update: %+v %v", upd, err)
	}
	second, err := commands.IssueCredentialsHandler{Store: store}.Handle(ctx, commands.IssueCredentials{OrganizationID: created.OrganizationID})
	if err != nil {
		t.Fatal(err)
	}
	pos, err := commands.RevokeCredentialsHandler{Store: store}.Handle(ctx, commands.RevokeCredentials{OrganizationID: created.OrganizationID, ClientID: created.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (commands.RevokeCredentialsHandler{Store: store}).Handle(ctx, commands.RevokeCredentials{OrganizationID: created.OrganizationID, ClientID: "ci_other"}); !errors.Is(err, organization.ErrCredentialsNotFound) {
		t.Fatalf("revoking a foreign client: %v", err)
	}
	p := projections.Organizations{}
	find := queries.NewFindClientHandler(pool)
	check := func() bool {
		t.Helper()
		c, err := find.Handle(ctx, second.ClientID)
		if err != nil {
			return false
		}
		if _, err := find.Handle(ctx, created.ClientID); !errors.Is(err, queries.ErrClientNotFound) {
			return false
		}
		creds, err := queries.ListCredentials(ctx, pool, created.OrganizationID)
		if err != nil {
			t.Fatal(err)
		}
		return len(c.AllowedOrigins) == 1 && c.AllowedOrigins[0] == "https://b.example" &&
			len(creds) == 2 && !creds[0].Active && creds[1].Active
	}
	deadline := time.Now().Add(30 * time.Second)
	for !check() {
		if err := messaging.CatchUp(ctx, store, pool, p); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the read model never showed the changes (up to %v)", pos)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := messaging.Rebuild(ctx, store, pool, []messaging.Projection{p}, p.Name()); err != nil {
		t.Fatal(err)
	}
	if !check() {
		t.Fatal("a rebuild gives another read model")
	}
	orgs, err := queries.ListOrganizations(ctx, pool)
	if err != nil || len(orgs) != 1 || orgs[0].ActiveCredentials != 1 {
		t.Fatalf("list: %+v %v", orgs, err)
	}
}
