package domain_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/companin/companin/domain"
)

type settings struct {
	Name  string   `json:"name"`
	Tags  []string `json:"tags,omitempty"`
	Level int      `json:"level"`
}

type created struct{ S settings }
type updated struct {
	S       settings
	Changed []string
}
type deleted struct{}

func (created) EventType() string { return "Created" }
func (updated) EventType() string { return "Updated" }
func (deleted) EventType() string { return "Deleted" }

func (e created) After() (settings, bool) { return e.S, false }
func (e updated) After() (settings, bool) { return e.S, false }
func (deleted) After() (settings, bool)   { return settings{}, true }

var (
	errExists   = errors.New("exists")
	errNotFound = errors.New("not found")
)

func TestChangedNamesTheFieldsThatDifferByTheirJSONNames(t *testing.T) {
	a := settings{Name: "a", Tags: nil, Level: 1}
	for _, tt := range []struct {
		b    settings
		want []string
	}{
		{settings{Name: "a", Tags: []string{}, Level: 1}, nil},
		{settings{Name: "b", Tags: []string{"x"}, Level: 1}, []string{"name", "tags"}},
		{settings{Name: "a", Level: 2}, []string{"level"}},
	} {
		if got := domain.Changed(a, tt.b); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Changed(%+v, %+v) = %v, want %v", a, tt.b, got, tt.want)
		}
	}
}

// Configured records an update only when it changes something, and nothing
// at all once deleted or before it was created.
func TestConfiguredRecordsWhatChangesAndRefusesTheGone(t *testing.T) {
	var c domain.Configured[settings]
	rename := func(name string) func(settings) (settings, error) {
		return func(s settings) (settings, error) { s.Name = name; return s, nil }
	}
	updatedTo := func(next settings, changed []string) domain.SettingsEvent[settings] {
		return updated{S: next, Changed: changed}
	}
	if err := c.Update(rename("x"), errNotFound, updatedTo); !errors.Is(err, errNotFound) {
		t.Fatalf("update before create: %v", err)
	}
	if err := c.Create(created{S: settings{Name: "a"}}, errExists); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(created{S: settings{Name: "b"}}, errExists); !errors.Is(err, errExists) {
		t.Fatalf("second create: %v", err)
	}
	if err := c.Update(rename("a"), errNotFound, updatedTo); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(rename("b"), errNotFound, updatedTo); err != nil {
		t.Fatal(err)
	}
	want := []domain.Event{created{S: settings{Name: "a"}}, updated{S: settings{Name: "b"}, Changed: []string{"name"}}}
	if got := c.Changes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("changes: %+v", got)
	}
	if err := c.Delete(deleted{}, errNotFound); err != nil || c.Exists() {
		t.Fatalf("delete: %v, exists %v", err, c.Exists())
	}
	if err := c.Delete(deleted{}, errNotFound); !errors.Is(err, errNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := c.Update(rename("c"), errNotFound, updatedTo); !errors.Is(err, errNotFound) {
		t.Fatalf("update after delete: %v", err)
	}
}

func TestPatchKeepsTheFirstBrokenRuleAndLeavesAbsentFieldsAlone(t *testing.T) {
	s := settings{Name: "keep", Tags: []string{"t"}}
	long, empty := "toolong", " "
	var p domain.Patch
	p.Text("name", nil, &s.Name, 5, true)
	p.Texts("tags", &[]string{" a ", "b"}, &s.Tags, 5, 3)
	if p.Err() != nil || s.Name != "keep" || !reflect.DeepEqual(s.Tags, []string{"a", "b"}) {
		t.Fatalf("%v %+v", p.Err(), s)
	}
	p.Text("name", &long, &s.Name, 5, true)
	p.Text("name", &empty, &s.Name, 5, true)
	var inv *domain.InvalidError
	if !errors.As(p.Err(), &inv) || inv.Field != "name" || inv.Message != "must be at most 5 characters" || s.Name != "keep" {
		t.Fatalf("%v %+v", p.Err(), s)
	}
}

func TestEventsDecodesByStoredNameAndPassesOverOthers(t *testing.T) {
	table := domain.Events(created{}, updated{})
	e, err := table.Decode("Updated", []byte(`{"S":{"name":"n"},"Changed":["name"]}`))
	if err != nil || !reflect.DeepEqual(e, updated{S: settings{Name: "n"}, Changed: []string{"name"}}) {
		t.Fatalf("%#v %v", e, err)
	}
	if e, err := table.Decode("SomethingElse", []byte(`{}`)); e != nil || err != nil {
		t.Fatalf("another type: %#v %v", e, err)
	}
	if _, err := table.Decode("Created", []byte(`{"S":1}`)); err == nil {
		t.Fatal("bad JSON decoded")
	}
}
