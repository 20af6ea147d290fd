package widgetconfig

import (
	"errors"
	"testing"
	"time"

	"github.com/companin/companin/domain"
	"github.com/google/uuid"
)

func ptr[T any](v T) *T { return &v }

func TestParseSettingsFillsDefaultsAndNormalizes(t *testing.T) {
	s, err := ParseSettings(Input{PrimaryColor: ptr(" #ABCDEF "), Locale: ptr("pt_br"),
		AllowedOrigins: ptr([]string{"https://Shop.example.com/", "https://shop.example.com"})})
	if err != nil {
		t.Fatal(err)
	}
	if s.Title != Defaults().Title || s.PrimaryColor != "#abcdef" || s.Locale != "pt-BR" {
		t.Fatalf("settings: %+v", s)
	}
	if len(s.AllowedOrigins) != 1 || s.AllowedOrigins[0] != "https://shop.example.com" {
		t.Fatalf("origins not normalized and deduplicated: %v", s.AllowedOrigins)
	}
	if !s.AllowsOrigin("https://SHOP.example.com") || s.AllowsOrigin("https://evil.example") || s.AllowsOrigin("") {
		t.Fatal("AllowsOrigin")
	}
	if !Defaults().AllowsOrigin("") {
		t.Fatal("no origins listed: any page")
	}
}

func TestParseSettingsRejects(t *testing.T) {
	for name, in := range map[string]Input{
		"primary_color":      {PrimaryColor: ptr("blue")},
		"position":           {Position: ptr("top")},
		"title":              {Title: ptr("  ")},
		"locale":             {Locale: ptr("")},
		"allowed_origins[0]": {AllowedOrigins: ptr([]string{"ftp://x"})},
	} {
		_, err := ParseSettings(in)
		var ie *domain.InvalidError
		if !errors.As(err, &ie) || ie.Field != name {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestUpdateRecordsOnlyChanges(t *testing.T) {
	c := New(uuid.New())
	if err := c.Update(Input{Title: ptr("x")}, time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update before create: %v", err)
	}
	if err := c.Create(Defaults(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(Input{Title: ptr(Defaults().Title)}, time.Now()); err != nil || len(c.Changes()) != 1 {
		t.Fatalf("a no-op update recorded: %v %d", err, len(c.Changes()))
	}
	if err := c.Update(Input{Title: ptr("Help"), Position: ptr(PositionBottomLeft)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	u, ok := c.Changes()[1].(Updated)
	if !ok || u.Title != "Help" || u.Greeting != Defaults().Greeting || len(u.Changed) != 2 {
		t.Fatalf("update event: %+v", c.Changes()[1])
	}
	if err := c.Create(Defaults(), time.Now()); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
}
