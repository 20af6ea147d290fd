package es_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

func TestCheckJSONText(t *testing.T) {
	for _, tc := range []struct {
		doc, path, problem string // problem "": the document is fine
	}{
		{`{"name":"Zoë","traits":{"x":"a\u00e9b","ok":"\ud83d\ude00"}}`, "", ""},
		{`{"a":"back\\u0000slash"}`, "", ""}, // an escaped backslash, then text
		{`[1,true,null,{"a":[]}]`, "", ""},
		{`{"traits":{"x":"a\u0000b"}}`, "traits.x", "NUL"},
		{`{"traits":{"x":{"deep":["ok","pwn\u0000"]}}}`, "traits.x.deep[1]", "NUL"},
		{"{\"metadata\":{\"k\":\"caf\xc3\"}}", "metadata.k", "UTF-8"},
		{"{\"tags\":[\"a\",\"\xff\xfe\"]}", "tags[1]", "UTF-8"},
		{`{"traits":{"bad\u0000key":1}}`, `traits.bad\u0000key`, "key"},
		{"{\"m\":{\"\xe2\x82\":1}}", "m.\ufffd\ufffd", "UTF-8"},
		{`{"content":"\ud800"}`, "content", "surrogate"},
		{`{"content":"\udc00x"}`, "content", "surrogate"},
		{`"\u0000"`, "", "NUL"},
	} {
		err := es.CheckJSONText([]byte(tc.doc))
		switch {
		case tc.problem == "" && err != nil:
			t.Errorf("%s: %v, want no problem", tc.doc, err)
		case tc.problem != "" && err == nil:
			t.Errorf("%s: no problem found, want %s at %q", tc.doc, tc.problem, tc.path)
		case tc.problem != "" && (err.Path != tc.path || !strings.Contains(err.Problem, tc.problem)):
			t.Errorf("%s: %q %q, want %s at %q", tc.doc, err.Path, err.Problem, tc.problem, tc.path)
		}
	}
}

// FuzzCheckJSONText: any bytes, JSON or not, end the walk without a panic,
// and a valid document whose strings all decode to clean text passes.
func FuzzCheckJSONText(f *testing.F) {
	for _, s := range []string{`{"a":"\u0000"}`, "{\"a\":\"\xff\"}", `[}`, `{"a":}`, `{"\ud800":1}`, `"\\u0000"`, `[[[`, `{"a":"\`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := es.CheckJSONText(b)
		if err != nil || !json.Valid(b) {
			return
		}
		// Clean per the walk: decoding must not have replaced anything.
		var v any
		if json.Unmarshal(b, &v) != nil {
			return
		}
		if holdsNUL(v) {
			t.Fatalf("%q passed but holds NUL", b)
		}
	})
}

func TestAppendRefusesTextTheLogCannotStore(t *testing.T) {
	ok := es.NewEvent{ID: uuid.New(), Type: "Noted", Data: json.RawMessage(`{"a":"b"}`)}
	if err := es.ValidateAppend("s-1", []es.NewEvent{ok}); err != nil {
		t.Fatalf("clean event refused: %v", err)
	}
	bad := func(change func(e *es.NewEvent)) es.NewEvent {
		e := ok
		e.ID = uuid.New()
		change(&e)
		return e
	}
	for name, e := range map[string]es.NewEvent{
		"NUL in data":         bad(func(e *es.NewEvent) { e.Data = json.RawMessage(`{"a":"x\u0000"}`) }),
		"invalid UTF-8":       bad(func(e *es.NewEvent) { e.Data = json.RawMessage("{\"a\":\"\xc3\"}") }),
		"NUL in metadata":     bad(func(e *es.NewEvent) { e.Metadata.Actor = "api_key:\x00" }),
		"NUL in extra":        bad(func(e *es.NewEvent) { e.Metadata.Extra = map[string]string{"k": "\x00"} }),
		"invalid UTF-8 type":  bad(func(e *es.NewEvent) { e.Type = "T\xff" }),
		"lone surrogate data": bad(func(e *es.NewEvent) { e.Data = json.RawMessage(`["\udfff"]`) }),
	} {
		err := es.ValidateAppend("s-1", []es.NewEvent{ok, e})
		if !errors.Is(err, es.ErrInvalidText) || !errors.Is(err, es.ErrInvalidEvent) {
			t.Errorf("%s: %v, want ErrInvalidText", name, err)
		}
	}
	if err := es.ValidateAppend("s-\x00", []es.NewEvent{ok}); !errors.Is(err, es.ErrInvalidText) {
		t.Errorf("NUL in the stream name: %v", err)
	}
}

func holdsNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case []any:
		for _, x := range v {
			if holdsNUL(x) {
				return true
			}
		}
	case map[string]any:
		for k, x := range v {
			if strings.ContainsRune(k, 0) || holdsNUL(x) {
				return true
			}
		}
	}
	return false
}
