package organization

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

func TestParseName(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
		err  error
	}{
		{"  Acme GmbH ", "Acme GmbH", nil},
		{"", "", ErrInvalidName},
		{"   ", "", ErrInvalidName},
		{strings.Repeat("ä", MaxNameLength), strings.Repeat("ä", MaxNameLength), nil},
		{strings.Repeat("a", MaxNameLength+1), "", ErrInvalidName},
	} {
		n, err := ParseName(c.in)
		if !errors.Is(err, c.err) || n.String() != c.want {
			t.Errorf("ParseName(%q) = %q, %v", c.in, n, err)
		}
	}
	if !errors.Is(ErrInvalidName, domain.ErrInvalid) {
		t.Error("ErrInvalidName must be a domain.ErrInvalid (422)")
	}
}

func TestParseOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://Shop.Example.com":  "https://shop.example.com",
		"https://shop.example.com/": "https://shop.example.com",
		"http://localhost:3000":     "http://localhost:3000",
	} {
		if got, err := ParseOrigin(in); err != nil || got != want {
			t.Errorf("ParseOrigin(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "shop.example.com", "ftp://x.example", "https://x.example/path", "https://u:p@x.example", "https://x.example?q=1", "*"} {
		if _, err := ParseOrigin(in); !errors.Is(err, ErrInvalidOrigin) {
			t.Errorf("ParseOrigin(%q) = %v, want ErrInvalidOrigin", in, err)
		}
	}
}

func TestNewAndIssueCredentialsRecordEvents(t *testing.T) {
	id := uuid.New()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	name, _ := ParseName("Acme")
	o, err := New(id, name, []string{"https://a.example", "https://A.example/", "http://b.example"}, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.IssueCredentials("ci_1", HashSecret("s"), at); err != nil {
		t.Fatal(err)
	}
	if err := o.IssueCredentials("ci_1", HashSecret("t"), at); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("duplicate client id: %v", err)
	}
	rec := o.Recorded()
	if len(rec) != 2 || rec[0].Type != OrganizationCreatedType || rec[1].Type != CredentialsIssuedType {
		t.Fatalf("recorded %v", rec)
	}
	if !strings.Contains(string(rec[0].Data), `"allowed_origins":["https://a.example","http://b.example"]`) ||
		!strings.Contains(string(rec[0].Data), `"created_at":"2026-01-02T02:04:05Z"`) {
		t.Fatalf("created: %s", rec[0].Data)
	}
	if strings.Contains(string(rec[1].Data), `"s"`) || !strings.Contains(string(rec[1].Data), HashSecret("s")) {
		t.Fatalf("credentials must carry the hash only: %s", rec[1].Data)
	}

	stored := make([]es.Event, len(rec))
	for i, e := range rec {
		stored[i] = es.Event{ID: e.ID, Type: e.Type, Data: e.Data, Version: uint64(i + 1)}
	}
	loaded, err := Load(stored)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.ID() != id || loaded.Name() != "Acme" || loaded.Version() != 2 || len(loaded.AllowedOrigins()) != 2 {
		t.Fatalf("loaded %+v", loaded)
	}
	if err := loaded.IssueCredentials("ci_1", HashSecret("x"), at); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("issued client ids survive loading: %v", err)
	}
	if _, err := Load(nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty stream: %v", err)
	}
}

func TestNewRefusesBadOrigins(t *testing.T) {
	name, _ := ParseName("Acme")
	if _, err := New(uuid.New(), name, []string{"https://ok.example", "not an origin"}, time.Now()); !errors.Is(err, ErrInvalidOrigin) {
		t.Fatalf("got %v", err)
	}
}

func TestSecretMatches(t *testing.T) {
	h := HashSecret("cs_secret")
	if !SecretMatches("cs_secret", h) || SecretMatches("cs_secreT", h) || SecretMatches("", h) {
		t.Fatal("secret comparison")
	}
	if len(h) != 64 {
		t.Fatalf("hash %q", h)
	}
}

// given an organization with one client and one origin, when it is
// administered, then exactly these events are recorded and survive loading.
func TestAdministrationRecordsEvents(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	given := func(t *testing.T) *Organization {
		name, _ := ParseName("Acme")
		o, err := New(uuid.New(), name, []string{"https://a.example"}, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.IssueCredentials("ci_1", HashSecret("s"), at); err != nil {
			t.Fatal(err)
		}
		rec := o.Recorded()
		stored := make([]es.Event, len(rec))
		for i, e := range rec {
			stored[i] = es.Event{ID: e.ID, Type: e.Type, Data: e.Data, Version: uint64(i + 1)}
		}
		o, err = Load(stored)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	for _, c := range []struct {
		name    string
		when    func(o *Organization) error
		events  []string
		err     error
		origins []string
		active  map[string]bool
	}{
		{"add an origin", func(o *Organization) error { return o.AddAllowedOrigin("https://B.example/", at) },
			[]string{AllowedOriginAddedType}, nil, []string{"https://a.example", "https://b.example"}, map[string]bool{"ci_1": true}},
		{"add a listed origin", func(o *Organization) error { return o.AddAllowedOrigin("https://A.example", at) },
			nil, nil, []string{"https://a.example"}, map[string]bool{"ci_1": true}},
		{"add a bad origin", func(o *Organization) error { return o.AddAllowedOrigin("a.example", at) },
			nil, ErrInvalidOrigin, []string{"https://a.example"}, map[string]bool{"ci_1": true}},
		{"remove an origin", func(o *Organization) error { return o.RemoveAllowedOrigin("https://a.example", at) },
			[]string{AllowedOriginRemovedType}, nil, []string{}, map[string]bool{"ci_1": true}},
		{"remove an unlisted origin", func(o *Organization) error { return o.RemoveAllowedOrigin("https://c.example", at) },
			nil, nil, []string{"https://a.example"}, map[string]bool{"ci_1": true}},
		{"rotate: issue a second client, revoke the first", func(o *Organization) error {
			if err := o.IssueCredentials("ci_2", HashSecret("t"), at); err != nil {
				return err
			}
			return o.RevokeCredentials("ci_1", at)
		}, []string{CredentialsIssuedType, CredentialsRevokedType}, nil, []string{"https://a.example"}, map[string]bool{"ci_1": false, "ci_2": true}},
		{"revoke twice", func(o *Organization) error {
			if err := o.RevokeCredentials("ci_1", at); err != nil {
				return err
			}
			return o.RevokeCredentials("ci_1", at)
		}, []string{CredentialsRevokedType}, nil, []string{"https://a.example"}, map[string]bool{"ci_1": false}},
		{"revoke another organization's client", func(o *Organization) error { return o.RevokeCredentials("ci_other", at) },
			nil, domain.ErrNotFound, []string{"https://a.example"}, map[string]bool{"ci_1": true}},
		{"reissue a revoked client id", func(o *Organization) error {
			if err := o.RevokeCredentials("ci_1", at); err != nil {
				return err
			}
			return o.IssueCredentials("ci_1", HashSecret("u"), at)
		}, []string{CredentialsRevokedType}, domain.ErrConflict, []string{"https://a.example"}, map[string]bool{"ci_1": false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := given(t)
			err := c.when(o)
			if !errors.Is(err, c.err) {
				t.Fatalf("error %v, want %v", err, c.err)
			}
			rec := o.Recorded()
			var types []string
			for _, e := range rec {
				types = append(types, e.Type)
			}
			if strings.Join(types, ",") != strings.Join(c.events, ",") {
				t.Fatalf("recorded %v, want %v", types, c.events)
			}
			// What was recorded replays to the same state.
			stored := []es.Event{}
			name, _ := ParseName("Acme")
			base, _ := New(o.ID(), name, []string{"https://a.example"}, at)
			_ = base.IssueCredentials("ci_1", HashSecret("s"), at)
			for i, e := range append(base.Recorded(), rec...) {
				stored = append(stored, es.Event{ID: e.ID, Type: e.Type, Data: e.Data, Version: uint64(i + 1)})
			}
			loaded, err := Load(stored)
			if err != nil {
				t.Fatal(err)
			}
			for _, got := range []*Organization{o, loaded} {
				if strings.Join(got.AllowedOrigins(), ",") != strings.Join(c.origins, ",") {
					t.Fatalf("origins %v, want %v", got.AllowedOrigins(), c.origins)
				}
				active := map[string]bool{}
				for _, cr := range got.Credentials() {
					active[cr.ClientID] = cr.Active
				}
				if len(active) != len(c.active) {
					t.Fatalf("credentials %v, want %v", active, c.active)
				}
				for id, a := range c.active {
					if active[id] != a {
						t.Fatalf("credentials %v, want %v", active, c.active)
					}
				}
			}
		})
	}
}
