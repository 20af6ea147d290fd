package thread_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/answer"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/thread"
	"github.com/companin/companin/domain/usercontext"
	"github.com/google/uuid"
)

var at = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func activeAssistant(active bool, deleted bool) *assistant.Assistant {
	a := assistant.New(uuid.New())
	a.Apply(assistant.Created{AssistantID: a.ID(), Settings: assistant.Settings{Name: "Bot", IsActive: active}})
	if deleted {
		a.Apply(assistant.Deleted{AssistantID: a.ID()})
	}
	return a
}

func content(s string) message.Content {
	c, err := message.ParseContent(s)
	if err != nil {
		panic(err)
	}
	return c
}

func person(id uuid.UUID, erased bool) *usercontext.UserContext {
	u := usercontext.New(id)
	u.Apply(usercontext.Created{UserContextID: id, UserReference: "zelda"})
	if erased {
		u.Apply(usercontext.Erased{UserContextID: id})
	}
	return u
}

func TestStartSession(t *testing.T) {
	in, err := thread.ParseStart(thread.Session, thread.Input{Locale: "de", Metadata: map[string]any{"source": "website"}, CustomerID: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	if len(in.VisitorID) < len("visitor-")+36 || in.CustomerID != "" {
		t.Fatalf("visitor id not generated: %+v", in)
	}
	tests := []struct {
		name    string
		a       *assistant.Assistant
		wantErr error
	}{
		{"active assistant", activeAssistant(true, false), nil},
		{"inactive assistant", activeAssistant(false, false), assistant.ErrInactive},
		{"deleted assistant", activeAssistant(true, true), domain.ErrNotFound},
		{"unknown (or foreign: the loader finds none) assistant", assistant.New(uuid.New()), domain.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := thread.New(thread.Session, uuid.New())
			err := s.Start(tt.a, in, at)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if len(s.Changes()) != 0 {
					t.Fatalf("recorded %v on error", s.Changes())
				}
				return
			}
			got, ok := s.Changes()[0].(thread.SessionStarted)
			if !ok || got.AssistantID != tt.a.ID() || got.VisitorID != in.VisitorID || got.Locale != "de" || got.Metadata["source"] != "website" {
				t.Fatalf("events = %#v", s.Changes())
			}
			if err := s.Start(tt.a, in, at); !errors.Is(err, thread.ErrSessionExists) {
				t.Fatalf("second start: %v", err)
			}
		})
	}
}

func TestStartConversationAndPost(t *testing.T) {
	a := activeAssistant(true, false)
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
			in, err := thread.ParseStart(thread.Conversation, thread.Input{CustomerID: "user-456", Title: "Order Support", Locale: "en", VisitorID: "ignored"})
			if err != nil {
				t.Fatal(err)
			}
			in.Person = tt.userContext
			c := thread.New(thread.Conversation, uuid.New())
			if err := c.Start(a, in, at); err != nil {
				t.Fatal(err)
			}
			p, err := c.PostMessage(message.Draft{ID: uuid.New(), Role: message.User, Content: content("Can you help me track my order?"),
				Metadata: map[string]any{"order_id": "12345"}}, person(ctxID, false), at)
			if err != nil {
				t.Fatal(err)
			}
			ev := c.Changes()
			st := ev[0].(thread.ConversationStarted)
			if st.CustomerID != "user-456" || st.Title != "Order Support" || (st.UserContextID != nil) != (tt.userContext != uuid.Nil) {
				t.Fatalf("started = %#v", st)
			}
			if subj, fields := st.PersonalData(); subj != tt.wantSubject || (subj != "" && !slices.Equal(fields, []string{"customer_id", "title", "metadata"})) {
				t.Fatalf("started personal = %q %v", subj, fields)
			}
			if ev[1].(message.Posted).MessageID != p.MessageID {
				t.Fatalf("returned %+v, recorded %+v", p, ev[1])
			}
			subj, fields := p.PersonalData()
			if subj != tt.wantSubject || (subj != "" && !slices.Equal(fields, []string{"content", "metadata"})) {
				t.Fatalf("personal = %q %v", subj, fields)
			}
		})
	}
}

func TestParseStart(t *testing.T) {
	_, err := thread.ParseStart(thread.Conversation, thread.Input{CustomerID: " "})
	var ie *domain.InvalidError
	if !errors.As(err, &ie) || ie.Field != "customer_id" {
		t.Fatalf("conversation without customer: %v", err)
	}
	if _, err := thread.ParseStart(thread.Conversation, thread.Input{CustomerID: "c", Locale: "not a locale!"}); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("bad locale: %v", err)
	}
	if _, err := thread.ParseStart(thread.Session, thread.Input{}); err != nil {
		t.Fatalf("a session needs no customer: %v", err)
	}
	if _, err := thread.ParseStart("chat", thread.Input{}); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("unknown kind: %v", err)
	}
}

func TestPostMessage(t *testing.T) {
	id, person0 := uuid.New(), uuid.New()
	session := thread.SessionStarted{SessionID: id, AssistantID: uuid.New(), VisitorID: "v"}
	linked := thread.ConversationStarted{ConversationID: id, AssistantID: uuid.New(), CustomerID: "c", UserContextID: &person0}
	msgID := uuid.New()
	posted := message.Posted{MessageID: msgID, Role: message.User, Content: "Hello", Metadata: map[string]any{}, PostedAt: at}
	tests := []struct {
		name    string
		kind    thread.Kind
		given   []domain.Event
		person  *usercontext.UserContext
		wantN   int
		wantErr error
	}{
		{"into a started session", thread.Session, []domain.Event{session}, nil, 1, nil},
		{"same message id again records nothing", thread.Session, []domain.Event{session, posted}, nil, 0, nil},
		{"into an unknown session", thread.Session, nil, nil, 0, thread.ErrSessionNotFound},
		{"into an unknown conversation", thread.Conversation, nil, nil, 0, thread.ErrConversationNotFound},
		{"into a conversation of a person", thread.Conversation, []domain.Event{linked}, person(person0, false), 1, nil},
		{"into a conversation of an erased person", thread.Conversation, []domain.Event{linked}, person(person0, true), 0, thread.ErrPersonErased},
		{"into a conversation whose person is gone", thread.Conversation, []domain.Event{linked}, nil, 0, thread.ErrPersonErased},
		{"with another person", thread.Conversation, []domain.Event{linked}, person(uuid.New(), false), 0, thread.ErrPersonErased},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := thread.New(tt.kind, id)
			for _, e := range tt.given {
				s.Apply(e)
			}
			_, err := s.PostMessage(message.Draft{ID: msgID, Role: message.User, Content: content(" Hello ")}, tt.person, at)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(s.Changes()) != tt.wantN {
				t.Fatalf("events = %#v", s.Changes())
			}
			if tt.wantN == 1 {
				p := s.Changes()[0].(message.Posted)
				if p.Content != "Hello" || p.EventID() != msgID {
					t.Fatalf("posted = %#v", p)
				}
				if subj, _ := p.PersonalData(); (subj != "") != (tt.kind == thread.Conversation) {
					t.Fatalf("personal subject %q in a %s", subj, tt.kind)
				}
			}
		})
	}
	if _, err := message.ParseContent("   "); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("empty content: %v", err)
	}
}

// The reply worker asks the thread: given its events, is the message still
// to answer, with what history; then records the reply or the failure once.
func TestQuestionAnswerAndFailure(t *testing.T) {
	id := uuid.New()
	q1, q2 := uuid.New(), uuid.New()
	user := func(mid uuid.UUID, text string) message.Posted {
		return message.Posted{MessageID: mid, Role: message.User, Content: text}
	}
	reply1 := message.Posted{MessageID: answer.ReplyID(q1), Role: message.Assistant, Content: "Nine to six.", ReplyTo: &q1}
	given := []domain.Event{thread.SessionStarted{SessionID: id, AssistantID: uuid.New(), Locale: "de"}, user(q1, "Hours?"), reply1, user(q2, "And Saturdays?")}
	th := thread.New(thread.Session, id)
	for _, e := range given {
		th.Apply(e)
	}
	if th.Locale() != "de" {
		t.Fatalf("locale %q", th.Locale())
	}
	if _, ok := th.Question(q1); ok {
		t.Fatal("an answered message is a question again")
	}
	if _, ok := th.Question(reply1.MessageID); ok {
		t.Fatal("a reply is a question")
	}
	if _, ok := th.Question(uuid.New()); ok {
		t.Fatal("an unknown message is a question")
	}
	q, ok := th.Question(q2)
	if !ok || q.ReplyID != answer.ReplyID(q2) || q.Content != "And Saturdays?" || len(q.History) != 2 ||
		q.History[0].Content != "Hours?" || q.History[1].Role != "assistant" {
		t.Fatalf("question %+v %v", q, ok)
	}
	if q.SettledBy(user(uuid.New(), "Hello?")) || q.SettledBy(reply1) || !q.SettledBy(message.Posted{MessageID: q.ReplyID}) ||
		!q.SettledBy(answer.ReplyFailed{ReplyID: q.ReplyID}) {
		t.Fatal("SettledBy: only the reply or failure under q's reply id settles q")
	}
	th.Answer(q, thread.Reply{Content: content("Closed.")}, at)
	th.Answer(q, thread.Reply{Content: content("Closed, really.")}, at)
	th.FailReply(q, answer.ReasonEngine, "late", at)
	ch := th.Changes()
	if len(ch) != 1 {
		t.Fatalf("recorded %#v", ch)
	}
	if p := ch[0].(message.Posted); p.MessageID != q.ReplyID || *p.ReplyTo != q2 || p.Role != message.Assistant || p.Content != "Closed." {
		t.Fatalf("reply %#v", p)
	}
	if _, ok := th.Question(q2); ok {
		t.Fatal("answered, still a question")
	}

	failed := thread.New(thread.Session, id)
	for _, e := range given {
		failed.Apply(e)
	}
	q, _ = failed.Question(q2)
	failed.FailReply(q, answer.ReasonAssistantGone, "gone", at)
	failed.Answer(q, thread.Reply{Content: content("Too late")}, at)
	if ch := failed.Changes(); len(ch) != 1 || ch[0].(answer.ReplyFailed).ReplyID != q.ReplyID {
		t.Fatalf("recorded %#v", ch)
	}
	if _, ok := failed.Question(q2); ok {
		t.Fatal("failed, still a question")
	}
}

func TestGiveFeedback(t *testing.T) {
	id, q := uuid.New(), uuid.New()
	th := thread.New(thread.Conversation, id)
	for _, e := range []domain.Event{thread.ConversationStarted{ConversationID: id},
		message.Posted{MessageID: q, Role: message.User}, message.Posted{MessageID: answer.ReplyID(q), Role: message.Assistant}} {
		th.Apply(e)
	}
	like := answer.Like
	if _, err := th.GiveFeedback(q, &like, "", at); !errors.Is(err, answer.ErrNotAReply) {
		t.Fatalf("feedback on a user message: %v", err)
	}
	if _, err := th.GiveFeedback(uuid.New(), &like, "", at); !errors.Is(err, answer.ErrMessageNotFound) {
		t.Fatalf("feedback on an unknown message: %v", err)
	}
	f, err := th.GiveFeedback(answer.ReplyID(q), &like, "ok", at)
	if err != nil || len(th.Changes()) != 1 || *f.Rating != answer.Like {
		t.Fatalf("feedback %+v %v", f, err)
	}
}

func TestParseStream(t *testing.T) {
	id := uuid.New()
	for _, k := range []thread.Kind{thread.Session, thread.Conversation} {
		if got, gotID, ok := thread.ParseStream(k.Stream(id)); !ok || got != k || gotID != id {
			t.Fatalf("%s: %s %s %v", k, got, gotID, ok)
		}
	}
	for _, s := range []string{"assistant-" + id.String(), "session-x", "session"} {
		if _, _, ok := thread.ParseStream(s); ok {
			t.Fatalf("%s parsed", s)
		}
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
		{"conversation_started_v1_clear_title.json", thread.TypeConversationStarted, func(e domain.Event) bool {
			s := e.(thread.ConversationStarted)
			return s.Title == "Zelda Erasmus complaint" && s.Metadata["email"] == "zelda@example.org" && s.CustomerID == "cust-old" && s.UserContextID != nil
		}},
		{"conversation_started_v1_erased.json", thread.TypeConversationStarted, func(e domain.Event) bool {
			s := e.(thread.ConversationStarted)
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
		e, err := thread.Decode(tt.typ, data)
		if err != nil || e == nil || !tt.check(e) {
			t.Errorf("%s: decoded %#v (%v)", tt.file, e, err)
		}
	}
}

// A session stream as the earlier packages (domain/session, domain/message,
// domain/answer) wrote it, event by event: it replays into the thread, and
// the thread's events encode to the same bytes, so stored streams load and
// rebuild as before.
func TestStoredSessionStreamReplays(t *testing.T) {
	stream := []struct{ file, typ string }{
		{"session_started_v1.json", thread.TypeSessionStarted},
		{"message_posted_v1_user.json", message.TypePosted},
		{"message_posted_v1_reply.json", message.TypePosted},
		{"message_posted_v1_second.json", message.TypePosted},
		{"reply_failed_v1.json", answer.TypeReplyFailed},
	}
	th := thread.New(thread.Session, uuid.MustParse("3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a66"))
	for _, s := range stream {
		data, err := os.ReadFile(filepath.Join("testdata", s.file))
		if err != nil {
			t.Fatal(err)
		}
		e, err := thread.Decode(s.typ, data)
		if err != nil || e == nil || e.EventType() != s.typ {
			t.Fatalf("%s: decoded %#v (%v)", s.file, e, err)
		}
		again, err := json.Marshal(e)
		if err != nil || !bytes.Equal(append(again, '\n'), data) {
			t.Errorf("%s: encodes as\n%s\nstored as\n%s", s.file, again, data)
		}
		th.Apply(e)
	}
	if th.Locale() != "de" || th.AssistantID() != uuid.MustParse("0b6c2e1a-8f4d-4c3b-9a2e-7d1f5e6a9b22") || th.Person() != uuid.Nil {
		t.Fatalf("thread: locale %q assistant %s person %s", th.Locale(), th.AssistantID(), th.Person())
	}
	for _, id := range []string{"6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d77", "8d9e0f1a-2b3c-4d4e-8f5a-6b7c8d9e0f88"} {
		if _, ok := th.Question(uuid.MustParse(id)); ok {
			t.Errorf("message %s has its reply (or failure) in the stream, yet is a question", id)
		}
	}
	if _, err := th.GiveFeedback(answer.ReplyID(uuid.MustParse("6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d77")), nil, "", at); err != nil {
		t.Fatalf("feedback on the stored reply: %v", err)
	}
}
