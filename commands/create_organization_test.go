package commands

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/organization"
)

func TestCreateOrganization(t *testing.T) {
	store := memory.New()
	h := NewCreateOrganizationHandler(store)
	ctx := es.WithMetadata(context.Background(), es.Metadata{Actor: "cli", RequestID: "r1"})
	res, err := h.Handle(ctx, CreateOrganization{Name: " Acme ", AllowedOrigins: []string{"https://shop.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.ClientID, "ci_") || len(res.ClientID) != 35 || !strings.HasPrefix(res.ClientSecret, "cs_") || len(res.ClientSecret) != 46 {
		t.Fatalf("credentials %q %q", res.ClientID, res.ClientSecret)
	}
	events, err := store.ReadStream(ctx, organization.StreamName(res.OrganizationID), 1, 10)
	if err != nil || len(events) != 2 {
		t.Fatalf("events %v %v", events, err)
	}
	for _, e := range events {
		if e.Metadata.OrganizationID != res.OrganizationID.String() || e.Metadata.Actor != "cli" || e.Metadata.RequestID != "r1" {
			t.Fatalf("metadata %+v", e.Metadata)
		}
		if strings.Contains(string(e.Data), res.ClientSecret) {
			t.Fatalf("secret in the log: %s", e.Data)
		}
	}
	if events[len(events)-1].Position != res.Position {
		t.Fatalf("position %s", res.Position)
	}
	again, err := h.Handle(ctx, CreateOrganization{Name: "Acme"})
	if err != nil || again.OrganizationID == res.OrganizationID || again.ClientID == res.ClientID || again.ClientSecret == res.ClientSecret {
		t.Fatalf("second organization: %+v %v", again, err)
	}
	if _, err := h.Handle(ctx, CreateOrganization{Name: " "}); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("blank name: %v", err)
	}
	if _, err := h.Handle(ctx, CreateOrganization{Name: "X", AllowedOrigins: []string{"nope"}}); !errors.Is(err, organization.ErrInvalidOrigin) {
		t.Fatalf("bad origin: %v", err)
	}
}
