package conversation_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/conversation"
	"github.com/companin/companin/domain/message"
	"github.com/google/uuid"
)

var at = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestStartAndPost(t *testing.T) {
	a := assistant.New(uuid.New())
	a.Apply(assistant.Created{AssistantID: a.ID(), Settings: assistant.Settings{Name: "Bot", IsActive: true}})
	ctxID := uuid.New()
	tests := []struct {
		name        string
		userContext uuid.UUID
		wantSubject string
	}{
		{"without user context", uuid.Nil, ""},
		{"linked to a user context", ctxID, ctxID.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := conversation.ParseStart("user-456", "Order Support", "en", nil)
			if err != nil {
				t.Fatal(err)
			}
			in.UserContextID = tt.userContext
			c := conversation.New(uuid.New())
			if err := c.Start(a, in, at); err != nil {
				t.Fatal(err)
			}
			body, _ := message.ParseContent("Can you help me track my order?")
			if _, err := c.PostMessage(message.Draft{Role: message.User, Content: body, Metadata: map[string]any{"order_id": "12345"}}, at); err != nil {
				t.Fatal(err)
			}
			ev := c.Changes()
			st := ev[0].(conversation.Started)
			if st.CustomerID != "user-456" || st.Title != "Order Support" || (st.UserContextID != nil) != (tt.userContext != uuid.Nil) {
				t.Fatalf("started = %#v", st)
			}
			if subj, fields := st.PersonalData(); subj != tt.wantSubject || (subj != "" && !slices.Equal(fields, []string{"customer_id", "title", "metadata"})) {
				t.Fatalf("started personal = %q %v", subj, fields)
			}
			subj, fields := ev[1].(message.Posted).PersonalData()
			if subj != tt.wantSubject || (subj != "" && !slices.Equal(fields, []string{"content", "metadata"})) {
				t.Fatalf("personal = %q %v", subj, fields)
			}
		})
	}
}

func TestParseStartRequiresCustomer(t *testing.T) {
	_, err := conversation.ParseStart(" ", "", "", nil)
	var ie *domain.InvalidError
	if !errors.As(err, &ie) || ie.Field != "customer_id" {
		t.Fatalf("err = %v", err)
	}
	if _, err := conversation.ParseStart("c", "", "not a locale!", nil); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("bad locale: %v", err)
	}
}

func TestNoMessageIntoUnknownConversation(t *testing.T) {
	body, _ := message.ParseContent("hi")
	_, err := conversation.New(uuid.New()).PostMessage(message.Draft{Role: message.User, Content: body}, at)
	if !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestNoConversationOnInactiveAssistant(t *testing.T) {
	a := assistant.New(uuid.New())
	a.Apply(assistant.Created{AssistantID: a.ID(), Settings: assistant.Settings{Name: "Bot", IsActive: false}})
	in, _ := conversation.ParseStart("c", "", "", nil)
	if err := conversation.New(uuid.New()).Start(a, in, at); !errors.Is(err, assistant.ErrInactive) {
		t.Fatalf("err = %v", err)
	}
}

// Stored shapes must keep decoding: what the earlier version wrote (title and
// metadata in the clear) and what readers get once the person is erased
// (every personal field null).
func TestGoldenEventsDecode(t *testing.T) {
	for _, tt := range []struct {
		file, typ string
		check     func(domain.Event) bool
	}{
		{"conversation_started_v1_clear_title.json", conversation.TypeStarted, func(e domain.Event) bool {
			s := e.(conversation.Started)
			return s.Title == "Zelda Erasmus complaint" && s.Metadata["email"] == "zelda@example.org" && s.CustomerID == "cust-old" && s.UserContextID != nil
		}},
		{"conversation_started_v1_erased.json", conversation.TypeStarted, func(e domain.Event) bool {
			s := e.(conversation.Started)
			return s.Title == "" && s.Metadata == nil && s.CustomerID == "" && s.UserContextID != nil && s.Locale == "en"
		}},
		{"message_posted_v1_erased.json", message.TypePosted, func(e domain.Event) bool {
			p := e.(message.Posted)
			return p.Content == "" && p.Metadata == nil && p.Role == message.User
		}},
	} {
		data, err := os.ReadFile(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		e, err := conversation.Decode(tt.typ, data)
		if err != nil || e == nil || !tt.check(e) {
			t.Errorf("%s: decoded %#v (%v)", tt.file, e, err)
		}
	}
}
