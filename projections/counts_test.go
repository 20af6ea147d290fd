package projections_test

import (
	"testing"

	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/assistant"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/thread"
)

// A thread's message count moves once per new message: in the statement
// that inserts the message (the runners batch statements, so the projection
// cannot look at rows affected), and not at all when a replay meets a message
// it already has.
func TestMessageCountsMoveOncePerMessageAndNotOnReplay(t *testing.T) {
	ctx, store, pool := setup(t)
	cmds := commands.New(commands.Deps{Store: store})
	a, err := cmds.CreateAssistant.Handle(ctx, commands.CreateAssistant{Input: assistant.Input{Name: str("Bot")}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := cmds.StartThread.Handle(ctx, commands.StartThread{Kind: thread.Session, AssistantID: a.ID})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cmds.StartThread.Handle(ctx, commands.StartThread{Kind: thread.Conversation, AssistantID: a.ID, CustomerID: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	var last es.Position
	for i, th := range []struct {
		kind thread.Kind
		w    commands.Written
	}{{thread.Session, s}, {thread.Session, s}, {thread.Session, s}, {thread.Conversation, c}, {thread.Conversation, c}} {
		m, err := cmds.PostMessage.Handle(ctx, commands.PostMessage{Kind: th.kind, ThreadID: th.w.ID, Content: "message " + string(rune('a'+i))})
		if err != nil {
			t.Fatal(err)
		}
		last = m.Position
	}
	check := func(when string) {
		t.Helper()
		var sessions, conversations, messages int
		if err := pool.QueryRow(ctx, `SELECT (SELECT message_count FROM sessions WHERE id = $1),
			(SELECT message_count FROM conversations WHERE id = $2), (SELECT count(*) FROM messages)`, s.ID, c.ID).
			Scan(&sessions, &conversations, &messages); err != nil {
			t.Fatal(err)
		}
		if sessions != 3 || conversations != 2 || messages != 5 {
			t.Fatalf("%s: session count %d, conversation count %d, messages %d; want 3, 2, 5", when, sessions, conversations, messages)
		}
	}
	catchUp(t, ctx, store, pool, last)
	check("after catch-up")
	// The whole log again over the read model as it is.
	if _, err := pool.Exec(ctx, `UPDATE consumer_checkpoints SET position = '' WHERE name = $1`, "conversations"); err != nil {
		t.Fatal(err)
	}
	catchUp(t, ctx, store, pool, last)
	check("after a replay")
	if err := messaging.Rebuild(ctx, store, pool, resources(), "conversations"); err != nil {
		t.Fatal(err)
	}
	check("after a rebuild")
}
