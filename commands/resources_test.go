package commands_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/thread"
	"github.com/companin/companin/domain/usercontext"
	"github.com/google/uuid"
)

func orgCtx(org string) context.Context {
	return es.WithMetadata(context.Background(), es.Metadata{OrganizationID: org, Actor: "api_key:" + org})
}

func str(s string) *string { return &s }

func newAssistant(t *testing.T, ctx context.Context, store es.Store) uuid.UUID {
	t.Helper()
	w, err := commands.New(commands.Deps{Store: store}).CreateAssistant.Handle(ctx, commands.CreateAssistant{Input: assistant.Input{Name: str("Bot")}})
	if err != nil {
		t.Fatal(err)
	}
	return w.ID
}

func TestTenancy(t *testing.T) {
	store := memory.New()
	a, b := orgCtx("org-a"), orgCtx("org-b")
	asst := newAssistant(t, a, store)
	sess, err := commands.StartThreadHandler{Store: store}.Handle(a, commands.StartThread{Kind: thread.Session, AssistantID: asst})
	if err != nil {
		t.Fatal(err)
	}
	conv, err := commands.StartThreadHandler{Store: store}.Handle(a, commands.StartThread{Kind: thread.Conversation, AssistantID: asst, CustomerID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (commands.SaveUserContextHandler{Store: store}).Handle(a, commands.SaveUserContext{UserReference: "user-1"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
	}{
		{"update assistant", func() error {
			_, err := commands.New(commands.Deps{Store: store}).UpdateAssistant.Handle(b, commands.UpdateAssistant{ID: asst, Input: assistant.Input{Tone: str("x")}})
			return err
		}},
		{"delete assistant", func() error {
			_, err := commands.New(commands.Deps{Store: store}).DeleteAssistant.Handle(b, commands.DeleteAssistant{ID: asst})
			return err
		}},
		{"session on foreign assistant", func() error {
			_, err := commands.StartThreadHandler{Store: store}.Handle(b, commands.StartThread{Kind: thread.Session, AssistantID: asst})
			return err
		}},
		{"conversation on foreign assistant", func() error {
			_, err := commands.StartThreadHandler{Store: store}.Handle(b, commands.StartThread{Kind: thread.Conversation, AssistantID: asst, CustomerID: "c"})
			return err
		}},
		{"message into foreign session", func() error {
			_, err := commands.PostMessageHandler{Store: store}.Handle(b, commands.PostMessage{Kind: thread.Session, ThreadID: sess.ID, Content: "hi"})
			return err
		}},
		{"message into foreign conversation", func() error {
			_, err := commands.PostMessageHandler{Store: store}.Handle(b, commands.PostMessage{Kind: thread.Conversation, ThreadID: conv.ID, Content: "hi"})
			return err
		}},
		{"patch foreign context", func() error {
			_, err := commands.PatchUserContextHandler{Store: store}.Handle(b, commands.PatchUserContext{Ref: "user-1", Traits: map[string]any{"a": 1}})
			return err
		}},
		{"erase foreign context", func() error {
			_, err := commands.EraseUserContextHandler{Store: store}.Handle(b, commands.EraseUserContext{Ref: "user-1"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, domain.ErrNotFound) {
				t.Fatalf("err = %v, want not found", err)
			}
		})
	}
	// Another organization may use the same reference: its own context.
	w, err := commands.SaveUserContextHandler{Store: store}.Handle(b, commands.SaveUserContext{UserReference: "user-1"})
	if err != nil || !w.Created {
		t.Fatalf("same reference in another org: %+v %v", w, err)
	}
}

func TestSaveUserContextIsUniquePerReference(t *testing.T) {
	store := memory.New()
	ctx := orgCtx("org")
	h := commands.SaveUserContextHandler{Store: store}
	ids := make([]uuid.UUID, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			w, err := h.Handle(ctx, commands.SaveUserContext{UserReference: "user-456", Traits: map[string]any{"k": i}})
			if err != nil {
				t.Error(err)
			}
			ids[i] = w.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("two contexts for one reference: %v", ids)
		}
	}
	events, err := store.ReadStream(ctx, commands.StreamName(usercontext.Kind, ids[0]), 1, 0)
	if err != nil || events[0].Type != usercontext.TypeCreated || events[0].Metadata.Subject != ids[0].String() {
		t.Fatalf("events %+v %v", events, err)
	}
}

type eraser struct{ subjects []string }

func (e *eraser) Erase(_ context.Context, s string) error {
	e.subjects = append(e.subjects, s)
	return nil
}

func TestEraseFreesReferenceAndDestroysKey(t *testing.T) {
	store := memory.New()
	ctx := orgCtx("org")
	w, err := commands.SaveUserContextHandler{Store: store}.Handle(ctx, commands.SaveUserContext{UserReference: "user-9", Traits: map[string]any{"name": "Ann"}})
	if err != nil {
		t.Fatal(err)
	}
	asst := newAssistant(t, ctx, store)
	conv, err := commands.StartThreadHandler{Store: store}.Handle(ctx, commands.StartThread{Kind: thread.Conversation, AssistantID: asst, CustomerID: "c", UserContext: "user-9"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (commands.PostMessageHandler{Store: store}).Handle(ctx, commands.PostMessage{Kind: thread.Conversation, ThreadID: conv.ID, Content: "my secret"}); err != nil {
		t.Fatal(err)
	}
	msgs, _ := store.ReadStream(ctx, thread.Conversation.Stream(conv.ID), 2, 1)
	if msgs[0].Type != message.TypePosted || msgs[0].Metadata.Subject != w.ID.String() || msgs[0].Metadata.Personal[0] != "content" {
		t.Fatalf("message metadata %+v", msgs[0].Metadata)
	}
	e := &eraser{}
	first, err := (commands.EraseUserContextHandler{Store: store, Eraser: e}).Handle(ctx, commands.EraseUserContext{Ref: "user-9"})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.subjects) != 1 || e.subjects[0] != w.ID.String() || first.ID != w.ID || first.ErasedAt.IsZero() {
		t.Fatalf("destroyed %v, result %+v", e.subjects, first)
	}
	// Retries, by id and by the reference the erasure freed, answer the same
	// result and destroy the key again (a retry completes a failed erasure).
	for _, ref := range []string{w.ID.String(), "user-9"} {
		again, err := (commands.EraseUserContextHandler{Store: store, Eraser: e}).Handle(ctx, commands.EraseUserContext{Ref: ref})
		if err != nil || again.ID != first.ID || !again.ErasedAt.Equal(first.ErasedAt) {
			t.Fatalf("retry by %s: %+v %v, want %+v", ref, again, err, first)
		}
	}
	if len(e.subjects) != 3 {
		t.Fatalf("retries destroyed %v", e.subjects)
	}
	if _, err := (commands.EraseUserContextHandler{Store: store, Eraser: e}).Handle(ctx, commands.EraseUserContext{Ref: "never-seen"}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("erase of an unknown reference: %v", err)
	}
	_, err = commands.StartThreadHandler{Store: store}.Handle(ctx, commands.StartThread{Kind: thread.Conversation, AssistantID: asst, CustomerID: "c", UserContext: w.ID.String()})
	if ie := (*domain.InvalidError)(nil); !errors.As(err, &ie) || ie.Field != "user_context_id" {
		t.Fatalf("conversation linked to an erased context: %v", err)
	}
	w2, err := commands.SaveUserContextHandler{Store: store}.Handle(ctx, commands.SaveUserContext{UserReference: "user-9"})
	if err != nil || !w2.Created || w2.ID == w.ID {
		t.Fatalf("reference not reusable after erasure: %+v %v", w2, err)
	}
}

func TestStartConversationUnknownContextIsFieldError(t *testing.T) {
	store := memory.New()
	ctx := orgCtx("org")
	asst := newAssistant(t, ctx, store)
	_, err := commands.StartThreadHandler{Store: store}.Handle(ctx, commands.StartThread{Kind: thread.Conversation, AssistantID: asst, CustomerID: "c", UserContext: "nobody"})
	var ie *domain.InvalidError
	if !errors.As(err, &ie) || ie.Field != "user_context_id" {
		t.Fatalf("err = %v", err)
	}
}

func TestPostMessageIdempotentByID(t *testing.T) {
	store := memory.New()
	ctx := orgCtx("org")
	asst := newAssistant(t, ctx, store)
	sess, err := commands.StartThreadHandler{Store: store}.Handle(ctx, commands.StartThread{Kind: thread.Session, AssistantID: asst})
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	for range 2 {
		if _, err := (commands.PostMessageHandler{Store: store}).Handle(ctx, commands.PostMessage{Kind: thread.Session, ThreadID: sess.ID, MessageID: id, Role: message.Assistant, Content: "reply"}); err != nil {
			t.Fatal(err)
		}
	}
	events, _ := store.ReadStream(ctx, thread.Session.Stream(sess.ID), 1, 0)
	if len(events) != 2 || events[1].ID != id {
		t.Fatalf("%d events", len(events))
	}
}
