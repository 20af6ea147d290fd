package projections_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/postgres"
	"github.com/companin/companin/adapters/eventstore/shred"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/thread"
	"github.com/companin/companin/projections"
	"github.com/jackc/pgx/v5/pgxpool"
)

func resources() []messaging.Projection {
	return []messaging.Projection{projections.Assistants{}, projections.Conversations{}, projections.UserContexts{}}
}

func setup(t *testing.T) (context.Context, *shred.Store, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.NewPool(t)
	inner, err := postgres.New(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	store := shred.New(inner, shred.NewMemoryKeys())
	ctx := es.WithMetadata(context.Background(), es.Metadata{OrganizationID: "org-1", Actor: "api_key:test"})
	return ctx, store, pool
}

func str(s string) *string { return &s }

// catchUp runs the projections until their checkpoints reach pos (the
// position of the test's last append). One CatchUp may stop short: the log
// shows only what lies below the oldest transaction still open on the
// server, and other tests' transactions hold that back.
func catchUp(t *testing.T, ctx context.Context, store es.Store, pool *pgxpool.Pool, pos es.Position) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := messaging.CatchUp(ctx, store, pool, resources()...); err != nil {
			t.Fatal(err)
		}
		behind := 0
		for _, p := range resources() {
			var cp string
			if err := pool.QueryRow(ctx, `SELECT position FROM consumer_checkpoints WHERE name = $1`, p.Name()).Scan(&cp); err != nil {
				t.Fatal(err)
			}
			if pos.After(es.Position(cp)) {
				behind++
			}
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projections behind %s", pos)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReadModelsFollowTheLog(t *testing.T) {
	ctx, store, pool := setup(t)
	a, err := commands.New(commands.Deps{Store: store}).CreateAssistant.Handle(ctx, commands.CreateAssistant{Input: assistant.Input{
		Name: str("Customer Support Bot"), Language: str("en"), DefaultTasks: &[]string{"answer_questions"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := commands.New(commands.Deps{Store: store}).UpdateAssistant.Handle(ctx, commands.UpdateAssistant{ID: a.ID, Input: assistant.Input{Tone: str("friendly")}}); err != nil {
		t.Fatal(err)
	}
	s, err := commands.StartThreadHandler{Store: store}.Handle(ctx, commands.StartThread{Kind: thread.Session, AssistantID: a.ID, Metadata: map[string]any{"source": "website"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := commands.PostMessageHandler{Store: store}.Handle(ctx, commands.PostMessage{Kind: thread.Session, ThreadID: s.ID, Content: "Hello"})
	if err != nil {
		t.Fatal(err)
	}
	catchUp(t, ctx, store, pool, m.Position)
	var tone, tasks string
	if err := pool.QueryRow(ctx, `SELECT tone, default_tasks::text FROM assistants WHERE id = $1`, a.ID).Scan(&tone, &tasks); err != nil {
		t.Fatal(err)
	}
	if tone != "friendly" || tasks != `["answer_questions"]` {
		t.Fatalf("assistant row: %q %q", tone, tasks)
	}
	var count int
	var content string
	if err := pool.QueryRow(ctx, `SELECT s.message_count, m.content FROM sessions s JOIN messages m ON m.thread_id = s.id WHERE s.id = $1`, s.ID).Scan(&count, &content); err != nil {
		t.Fatal(err)
	}
	if count != 1 || content != "Hello" {
		t.Fatalf("session: %d %q", count, content)
	}
	d, err := commands.New(commands.Deps{Store: store}).DeleteAssistant.Handle(ctx, commands.DeleteAssistant{ID: a.ID})
	if err != nil {
		t.Fatal(err)
	}
	catchUp(t, ctx, store, pool, d.Position)
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM assistants`).Scan(&count); err != nil || count != 0 {
		t.Fatalf("deleted assistant still listed: %d %v", count, err)
	}
}

func TestErasureSurvivesRebuild(t *testing.T) {
	ctx, store, pool := setup(t)
	a, err := commands.New(commands.Deps{Store: store}).CreateAssistant.Handle(ctx, commands.CreateAssistant{Input: assistant.Input{Name: str("Bot")}})
	if err != nil {
		t.Fatal(err)
	}
	uc, err := commands.SaveUserContextHandler{Store: store}.Handle(ctx, commands.SaveUserContext{UserReference: "user-456", Traits: map[string]any{"name": "John Doe", "email": "john@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (commands.PatchUserContextHandler{Store: store}).Handle(ctx, commands.PatchUserContext{Ref: "user-456", Traits: map[string]any{"tier": "premium"}}); err != nil {
		t.Fatal(err)
	}
	c, err := commands.StartThreadHandler{Store: store}.Handle(ctx, commands.StartThread{Kind: thread.Conversation, AssistantID: a.ID, CustomerID: "user-456", UserContext: "user-456"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := commands.StartThreadHandler{Store: store}.Handle(ctx, commands.StartThread{Kind: thread.Conversation, AssistantID: a.ID, CustomerID: "someone-else"})
	if err != nil {
		t.Fatal(err)
	}
	var last es.Position
	for _, th := range []commands.Written{c, other} {
		m, err := commands.PostMessageHandler{Store: store}.Handle(ctx, commands.PostMessage{Kind: thread.Conversation, ThreadID: th.ID, Content: "my order 4711 for John Doe"})
		if err != nil {
			t.Fatal(err)
		}
		last = m.Position
	}
	catchUp(t, ctx, store, pool, last)
	var traits string
	if err := pool.QueryRow(ctx, `SELECT traits::text FROM user_contexts WHERE id = $1`, uc.ID).Scan(&traits); err != nil || !strings.Contains(traits, "premium") || !strings.Contains(traits, "John Doe") {
		t.Fatalf("traits before erasure: %s %v", traits, err)
	}
	erased, err := commands.EraseUserContextHandler{Store: store, Eraser: store}.Handle(ctx, commands.EraseUserContext{Ref: "user-456"})
	if err != nil {
		t.Fatal(err)
	}
	// The conversation of an erased person takes no more messages.
	if _, err := (commands.PostMessageHandler{Store: store}).Handle(ctx, commands.PostMessage{Kind: thread.Conversation, ThreadID: c.ID, Content: "John Doe again"}); !errors.Is(err, thread.ErrPersonErased) {
		t.Fatalf("post after erasure: %v", err)
	}
	check := func(t *testing.T, when string) {
		t.Helper()
		catchUp(t, ctx, store, pool, erased.Position)
		var dump string
		err := pool.QueryRow(ctx, `SELECT concat_ws('|',
			(SELECT string_agg(coalesce(user_reference,'')||coalesce(traits::text,''), ',') FROM user_contexts),
			(SELECT string_agg(coalesce(content,''), ',') FROM messages WHERE thread_id = $1),
			(SELECT customer_id FROM conversations WHERE id = $1))`, c.ID).Scan(&dump)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(dump, "John") || strings.Contains(dump, "premium") || strings.Contains(dump, "user-456") {
			t.Fatalf("%s: personal data in read models: %s", when, dump)
		}
		var kept string
		if err := pool.QueryRow(ctx, `SELECT content FROM messages WHERE thread_id = $1`, other.ID).Scan(&kept); err != nil || kept != "my order 4711 for John Doe" {
			t.Fatalf("%s: unrelated conversation lost its content: %q %v", when, kept, err)
		}
	}
	check(t, "after erasure")
	all, err := store.ReadAll(ctx, es.Start, 0, es.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		if e.Stream == thread.Conversation.Stream(other.ID) {
			continue
		}
		if d := string(e.Data); strings.Contains(d, "John") || strings.Contains(d, "premium") || strings.Contains(d, "user-456") {
			t.Fatalf("personal data readable in event %s %s: %s", e.Type, e.Stream, d)
		}
	}
	if err := messaging.Rebuild(ctx, store, pool, resources(), ""); err != nil {
		t.Fatal(err)
	}
	check(t, "after rebuild")
}
