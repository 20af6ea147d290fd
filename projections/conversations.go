package projections

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/thread"
	"github.com/companin/companin/domain/usercontext"
	"github.com/jackc/pgx/v5"
)

// Conversations keeps sessions, conversations and their messages for the
// session, conversation and message queries. It is one projection because
// erasure crosses them: UserContextErased wipes the contents of that
// person's conversations here, and a message posted later into such a
// conversation is stored without content, live and on rebuild alike.
// Shredded events (content null once the key is destroyed) store NULL
// content; the customer id, title and metadata of such a conversation and
// the metadata of its messages (personal too) become "" and {}.
type Conversations struct{}

// Name is the checkpoint name: never rename it.
func (Conversations) Name() string { return "conversations" }

// EventTypes lets the runtime skip other events.
func (Conversations) EventTypes() []string {
	return []string{thread.TypeSessionStarted, thread.TypeConversationStarted, message.TypePosted, usercontext.TypeErased}
}

// threadTables are the read models' tables per kind of thread.
var threadTables = map[thread.Kind]string{thread.Session: "sessions", thread.Conversation: "conversations"}

// Handle applies one event; replays change nothing.
func (p Conversations) Handle(ctx context.Context, tx pgx.Tx, e es.Event) error {
	var err error
	switch e.Type {
	case thread.TypeSessionStarted, thread.TypeConversationStarted:
		err = p.started(ctx, tx, e)
	case message.TypePosted:
		err = p.messagePosted(ctx, tx, e)
	case usercontext.TypeErased:
		err = p.erased(ctx, tx, e)
	}
	if err != nil {
		return fmt.Errorf("conversations projection: %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}

// started inserts a session or a conversation: what the two kinds keep
// apart (visitor id; customer id, person and title) goes to their own table.
func (Conversations) started(ctx context.Context, tx pgx.Tx, e es.Event) error {
	de, err := thread.Decode(e.Type, e.Data)
	if err != nil {
		return err
	}
	switch ev := de.(type) {
	case thread.SessionStarted:
		_, err = tx.Exec(ctx, `
		INSERT INTO sessions (id, organization_id, assistant_id, visitor_id, locale, metadata, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
		ON CONFLICT (id) DO NOTHING`,
			ev.SessionID, e.Metadata.OrganizationID, ev.AssistantID, ev.VisitorID, ev.Locale, object(ev.Metadata), at(ev.StartedAt, e))
	case thread.ConversationStarted:
		_, err = tx.Exec(ctx, `
		INSERT INTO conversations (id, organization_id, assistant_id, customer_id, user_context_id, title, locale, metadata, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
		ON CONFLICT (id) DO NOTHING`,
			ev.ConversationID, e.Metadata.OrganizationID, ev.AssistantID, ev.CustomerID, ev.UserContextID, ev.Title, ev.Locale, object(ev.Metadata), at(ev.StartedAt, e))
	}
	return err
}

// messagePosted inserts a message of either kind. A conversation's message
// is its person's (user_context_id), and is stored without content once the
// person was erased; a session has neither (the join finds no conversation).
func (Conversations) messagePosted(ctx context.Context, tx pgx.Tx, e es.Event) error {
	kind, id, ok := thread.ParseStream(e.Stream)
	if !ok {
		return nil // a MessagePosted of another feature's stream
	}
	var ev message.Posted
	if err := json.Unmarshal(e.Data, &ev); err != nil {
		return err
	}
	// Content is null in a shredded event: keep it NULL rather than "".
	var raw struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(e.Data, &raw); err != nil {
		return err
	}
	sources := []byte("[]")
	if len(ev.Sources) > 0 {
		var err error
		if sources, err = json.Marshal(ev.Sources); err != nil {
			return err
		}
	}
	t := at(ev.PostedAt, e)
	// One statement: the count moves only if the message is new (the
	// runner queues statements, so Exec reports no rows affected).
	_, err := tx.Exec(ctx, `
		WITH ins AS (
			INSERT INTO messages (id, organization_id, thread_kind, thread_id, version, role, content, metadata, reply_to, sources, user_context_id, created_at)
			SELECT $1::uuid, $2::text, $3::text, $4::uuid, $5::bigint, $6::text, CASE WHEN c.user_context_erased THEN NULL ELSE $7::text END,
				CASE WHEN c.user_context_erased THEN '{}'::jsonb ELSE $8::jsonb END, $9::uuid, $10::jsonb, c.user_context_id, $11::timestamptz
			FROM (SELECT 1) one LEFT JOIN conversations c ON c.id = $4::uuid AND $3::text = 'conversation'
			ON CONFLICT (id) DO NOTHING RETURNING 1)
		UPDATE `+threadTables[kind]+` SET message_count = message_count + 1, updated_at = GREATEST(updated_at, $11::timestamptz)
		WHERE id = $4::uuid AND EXISTS (SELECT 1 FROM ins)`,
		ev.MessageID, e.Metadata.OrganizationID, string(kind), id, int64(e.Version), string(ev.Role), raw.Content, object(ev.Metadata), ev.ReplyTo, sources, t)
	return err
}

func (Conversations) erased(ctx context.Context, tx pgx.Tx, e es.Event) error {
	var ev usercontext.Erased
	if err := json.Unmarshal(e.Data, &ev); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		UPDATE conversations SET user_context_erased = true, customer_id = '', title = '', metadata = '{}'
		WHERE user_context_id = $1`, ev.UserContextID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE messages SET content = NULL, metadata = '{}' WHERE user_context_id = $1`, ev.UserContextID)
	return err
}

// Reset empties the read model before a rebuild.
func (Conversations) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE sessions, conversations, messages RESTART IDENTITY`)
	return err
}
