package usercontext_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/usercontext"
)

// FuzzSaveBody: whatever JSON a client sends as a context, parsing and
// merging either succeed or fail with a field error; they never panic.
func FuzzSaveBody(f *testing.F) {
	for _, s := range []string{
		`{"user_reference":"user-456","traits":{"name":"John Doe","preferences":{"language":"en","notifications":true}}}`,
		`{"user_reference":"","traits":null}`, `{"traits":{"a":{"b":{"c":null}}}}`, `{"traits":{"x":[1,{"y":null}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req struct {
			UserReference string         `json:"user_reference"`
			Traits        map[string]any `json:"traits"`
		}
		if json.Unmarshal(body, &req) != nil {
			return
		}
		ref, err := usercontext.ParseReference(req.UserReference)
		if err != nil {
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("reference %q: %v", req.UserReference, err)
			}
			return
		}
		traits, err := usercontext.ParseTraits(req.Traits)
		if err != nil {
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("traits: %v", err)
			}
			return
		}
		u := usercontext.New([16]byte{1})
		if _, err := u.Save(ref, traits, at); err != nil {
			t.Fatal(err)
		}
		if err := u.Merge(traits, at); err != nil {
			t.Fatal(err)
		}
		for _, e := range u.Changes() {
			if _, err := json.Marshal(e); err != nil {
				t.Fatalf("event does not encode: %v", err)
			}
		}
	})
}
