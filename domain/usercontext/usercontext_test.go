package usercontext_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/usercontext"
	"github.com/google/uuid"
)

var at = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestUserContext(t *testing.T) {
	id := uuid.New()
	created := usercontext.Created{UserContextID: id, UserReference: "user-456", Traits: map[string]any{"name": "John", "prefs": map[string]any{"lang": "en", "n": true}}, CreatedAt: at}
	erased := usercontext.Erased{UserContextID: id, ErasedBy: "api_key:c", ErasedAt: at}
	tests := []struct {
		name    string
		given   []domain.Event
		when    func(u *usercontext.UserContext) error
		then    []domain.Event
		wantErr error
	}{
		{"save creates", nil, func(u *usercontext.UserContext) error {
			_, err := u.Save("user-456", map[string]any{"name": "John", "prefs": map[string]any{"lang": "en", "n": true}, "gone": nil}, at)
			return err
		}, []domain.Event{created}, nil},
		{"save merges", []domain.Event{created}, func(u *usercontext.UserContext) error {
			_, err := u.Save("user-456", map[string]any{"tier": "premium", "prefs": map[string]any{"n": nil}}, at)
			return err
		}, []domain.Event{usercontext.TraitsChanged{UserContextID: id, Traits: map[string]any{"name": "John", "tier": "premium", "prefs": map[string]any{"lang": "en"}}, ChangedAt: at}}, nil},
		{"merge without change records nothing", []domain.Event{created}, func(u *usercontext.UserContext) error {
			return u.Merge(map[string]any{"name": "John"}, at)
		}, nil, nil},
		{"erase", []domain.Event{created}, func(u *usercontext.UserContext) error { return u.Erase("api_key:c", at) }, []domain.Event{erased}, nil},
		{"erased accepts no merge", []domain.Event{created, erased}, func(u *usercontext.UserContext) error {
			return u.Merge(map[string]any{"a": 1}, at)
		}, nil, domain.ErrNotFound},
		{"erased cannot be erased again", []domain.Event{created, erased}, func(u *usercontext.UserContext) error { return u.Erase("x", at) }, nil, domain.ErrNotFound},
		{"shredded traits replay as empty", []domain.Event{usercontext.Created{UserContextID: id, Traits: nil}}, func(u *usercontext.UserContext) error {
			return u.Merge(map[string]any{"a": "b"}, at)
		}, []domain.Event{usercontext.TraitsChanged{UserContextID: id, Traits: map[string]any{"a": "b"}, ChangedAt: at}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := usercontext.New(id)
			for _, e := range tt.given {
				u.Apply(e)
			}
			err := tt.when(u)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := u.Changes(); !reflect.DeepEqual(got, tt.then) {
				t.Fatalf("events = %#v\nwant %#v", got, tt.then)
			}
		})
	}
}

func TestPersonalData(t *testing.T) {
	id := uuid.New()
	subj, fields := usercontext.Created{UserContextID: id}.PersonalData()
	if subj != id.String() || !reflect.DeepEqual(fields, []string{"user_reference", "traits"}) {
		t.Fatalf("created: %s %v", subj, fields)
	}
	subj, fields = usercontext.TraitsChanged{UserContextID: id}.PersonalData()
	if subj != id.String() || !reflect.DeepEqual(fields, []string{"traits"}) {
		t.Fatalf("changed: %s %v", subj, fields)
	}
}

func TestReservation(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	var r usercontext.Reservation
	if got := r.Reserve(a); got != a {
		t.Fatalf("holder = %v", got)
	}
	if got := r.Reserve(b); got != a {
		t.Fatalf("taken reference given to %v", got)
	}
	r.Release(b)
	if r.Holder() != a {
		t.Fatal("released by non-holder")
	}
	r.Release(a)
	if got := r.Reserve(b); got != b {
		t.Fatalf("released reference not reusable: %v", got)
	}
	if n := len(r.Changes()); n != 3 {
		t.Fatalf("%d events", n)
	}
	if r.Released() != a {
		t.Fatalf("released = %v, want %v", r.Released(), a)
	}
}

func TestReferenceStreamNames(t *testing.T) {
	k1 := usercontext.NewReferences([]byte("0123456789abcdef0123456789abcdef"))
	k2 := usercontext.NewReferences([]byte("fedcba9876543210fedcba9876543210"))
	legacy := usercontext.LegacyReferenceStream("o1", "zelda@example.org")
	keyed := k1.Stream("o1", "zelda@example.org")
	if !strings.HasPrefix(keyed, usercontext.ReferenceKind+"-") || keyed == legacy {
		t.Fatalf("keyed name %q, legacy %q", keyed, legacy)
	}
	if keyed == k2.Stream("o1", "zelda@example.org") {
		t.Error("the name must depend on the key: without it a guess cannot be checked")
	}
	if keyed != k1.Stream("o1", "zelda@example.org") {
		t.Error("the name must be stable for one key")
	}
	if keyed == k1.Stream("o2", "zelda@example.org") || legacy == usercontext.LegacyReferenceStream("o2", "zelda@example.org") {
		t.Error("reference streams not per organization")
	}
	// The organization and the reference are separated unambiguously.
	if k1.Stream("o1", "x") == k1.Stream("o1x", "") {
		t.Error("ambiguous join of organization and reference")
	}
	if got := k1.Streams("o1", "zelda@example.org"); len(got) != 2 || got[0] != legacy || got[1] != keyed {
		t.Errorf("Streams = %v: the legacy name first, then the keyed one", got)
	}
	var none usercontext.References
	if got := none.Streams("o1", "zelda@example.org"); len(got) != 1 || got[0] != legacy || none.Stream("o1", "zelda@example.org") != legacy {
		t.Errorf("without a key: %v", got)
	}
}
