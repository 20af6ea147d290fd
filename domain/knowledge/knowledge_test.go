package knowledge

import (
	"errors"
	"testing"
	"time"

	"github.com/companin/companin/domain"
	"github.com/google/uuid"
)

var at = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func types(s *Source) []string {
	var out []string
	for _, e := range s.Changes() {
		out = append(out, e.EventType())
	}
	return out
}

func TestPutReplaceAndIngest(t *testing.T) {
	spec, err := ParseFile(Common{Title: "Manual", ExternalID: "m-1"}, "PDF", "m.pdf", []byte("%PDF-1.4 a"))
	if err != nil {
		t.Fatal(err)
	}
	s := New(uuid.New())
	if err := s.Put(spec, at); err != nil {
		t.Fatal(err)
	}
	if s.Status() != Processing || s.Revision() != 1 || !s.Pending(1) {
		t.Fatalf("after add: %s rev %d", s.Status(), s.Revision())
	}
	_ = s.Put(spec, at) // unchanged: nothing
	changed, _ := ParseFile(Common{Title: "Manual", ExternalID: "m-1"}, "pdf", "m.pdf", []byte("%PDF-1.4 b"))
	_ = s.Put(changed, at)
	// A late result for revision 1 is dropped; revision 2's counts.
	_ = s.CompleteIngestion(1, Document{Blocks: []Block{{Kind: Paragraph, Text: "old"}}}, "", at)
	_ = s.CompleteIngestion(2, Document{Blocks: []Block{{Kind: Paragraph, Text: "new text"}}}, "", at)
	_ = s.FailIngestion(2, "too late", at)
	want := []string{TypeAdded, TypeReplaced, TypeIngested}
	if got := types(s); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if s.Status() != Ready {
		t.Errorf("status %s", s.Status())
	}
	if err := s.RequestRefresh(at); err != nil || s.Revision() != 3 || s.Status() != Processing {
		t.Errorf("refresh: %v rev %d %s", err, s.Revision(), s.Status())
	}
	if err := s.Remove(at); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(at); !errors.Is(err, ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
	if err := s.Put(spec, at); err != nil || types(s)[len(s.Changes())-1] != TypeAdded {
		t.Errorf("re-add after removal: %v %v", err, types(s))
	}
}

func TestQAIsIngestedAtOnce(t *testing.T) {
	spec, err := ParseQA(Common{Tags: []string{"hours", "hours"}}, " What are your business hours? ", "9 to 6.")
	if err != nil {
		t.Fatal(err)
	}
	if spec.Title != "What are your business hours?" || len(spec.Tags) != 1 {
		t.Errorf("spec %+v", spec)
	}
	s := New(uuid.New())
	_ = s.Put(spec, at)
	if s.Status() != Ready || len(s.Changes()) != 2 {
		t.Fatalf("qa: %s %v", s.Status(), types(s))
	}
	if err := s.RequestRefresh(at); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("refresh of qa: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	var inv *domain.InvalidError
	for name, err := range map[string]error{
		"file type":  func() error { _, err := ParseFile(Common{Title: "x"}, "exe", "x", []byte("x")); return err }(),
		"empty file": func() error { _, err := ParseFile(Common{Title: "x"}, "txt", "x", nil); return err }(),
		"question":   func() error { _, err := ParseQA(Common{}, " ", "a"); return err }(),
		"url scheme": func() error { _, err := ParseURL(Common{}, "file:///etc/passwd"); return err }(),
		"url user":   func() error { _, err := ParseURL(Common{}, "https://u:p@example.com"); return err }(),
		"assistant":  func() error { _, err := ParseQA(Common{AssistantIDs: []uuid.UUID{uuid.Nil}}, "q", "a"); return err }(),
	} {
		if !errors.As(err, &inv) {
			t.Errorf("%s: %v is not a field error", name, err)
		}
	}
	if _, err := ParseFile(Common{Title: "x"}, "txt", "x", make([]byte, MaxFileBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if StreamID("org", "a") != StreamID("org", "a") || StreamID("org", "a") == StreamID("other", "a") {
		t.Error("stream ids must be stable per organization and external id")
	}
}
