package httpapi

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/thread"
	"github.com/companin/companin/domain/usercontext"
)

var resourceFuzzSeeds = []string{
	seedAssistant, seedSession, seedSessionMessage, seedConversation, seedConversationMessage, seedContext,
	`{}`, `{"content":""}`, `{"content":"  \t "}`, `{"content":null}`, `{"content":["x"]}`, `{"metadata":[]}`,
	`{"user_reference":"","traits":null}`, `{"user_reference":"u","traits":{"a":{"b":{"c":null}}}}`,
	`{"name":"a","language":"pt_BR-x-private-tags-that-go-on","default_tasks":["", "x"]}`,
	`{"locale":"zh-Hant-TW","visitor_id":"` + strings.Repeat("v", 300) + `"}`, `{"content":"\u0000"}`,
	`{"user_reference":"nul-user","traits":{"x":"a\u0000b"}}`, `{"content":"pwn\u0000","metadata":{"m":"\u0000"}}`,
	"{\"user_reference\":\"u\",\"traits\":{\"x\":\"caf\xc3\"}}", "{\"name\":\"B\xffot\",\"default_tasks\":[\"\xe2\x82\"]}",
	"{\"customer_id\":\"c\",\"title\":\"t\x80\",\"metadata\":{\"\xc0\":1}}", `{"visitor_id":"v\u0000","locale":"de"}`,
}

// FuzzResourceBodies: whatever a client sends to the message, context,
// session, conversation and assistant endpoints, decoding and the domain's
// parsing answer a 4xx (a field error for rule violations), never panic and
// never anything that would become a 5xx.
func FuzzResourceBodies(f *testing.F) {
	for _, s := range resourceFuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(kind string, err error) {
			if err == nil {
				return
			}
			var ae *apiError
			var ie *domain.InvalidError
			if !errors.As(err, &ae) && !errors.As(err, &ie) {
				t.Fatalf("%s: body %q: %v is not a client error", kind, body, err)
			}
			rec := httptest.NewRecorder()
			writeError(rec, httptest.NewRequest(http.MethodPost, "/", nil), err)
			if rec.Code < 400 || rec.Code >= 500 {
				t.Fatalf("%s: body %q answered %d", kind, body, rec.Code)
			}
		}
		var msg postMessageRequest
		err := decodeBytes(body, &msg)
		if err == nil && es.CheckJSONText(bytes.TrimSpace(body)) != nil {
			t.Fatalf("body %q: accepted with text the log cannot store", body)
		}
		if err == nil {
			_, err = message.ParseContent(deref(msg.Content))
			if err == nil {
				_, err = domain.Object("metadata", msg.Metadata)
			}
		}
		check("message", err)

		var uc saveContextRequest
		err = decodeBytes(body, &uc)
		if err == nil {
			if _, err = usercontext.ParseReference(deref(uc.UserReference)); err == nil {
				var traits map[string]any
				if traits, err = usercontext.ParseTraits(uc.Traits); err == nil {
					usercontext.MergePatch(map[string]any{"k": map[string]any{"x": 1}}, traits)
				}
			}
		}
		check("context", err)

		var st startThreadRequest
		decodeErr := decodeBytes(body, &st)
		for _, k := range []thread.Kind{thread.Session, thread.Conversation} {
			err = decodeErr
			if err == nil {
				_, err = thread.ParseStart(k, thread.Input{VisitorID: deref(st.VisitorID), CustomerID: deref(st.CustomerID),
					Title: deref(st.Title), Locale: deref(st.Locale), Metadata: st.Metadata})
			}
			check(string(k), err)
		}

		var sa assistantRequest
		err = decodeBytes(body, &sa)
		if err == nil {
			_, err = assistant.ParseSettings(sa)
		}
		check("assistant", err)
	})
}
