package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/conversation"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/session"
	"github.com/google/uuid"
)

// PostMessage adds a message to a session or a conversation. The HTTP layer
// posts role=user messages; the reply worker posts role=assistant replies with
// ReplyTo and Sources (and a MessageID derived from the user message, so a
// redelivery appends nothing twice).
type PostMessage struct {
	// Kind is session.Kind or conversation.Kind.
	Kind     string
	ThreadID uuid.UUID
	// MessageID: uuid.Nil chooses a new one.
	MessageID uuid.UUID
	Role      message.Role
	Content   string
	Metadata  map[string]any
	ReplyTo   *uuid.UUID
	Sources   []message.Source
}

// PostMessageHandler posts messages.
type PostMessageHandler struct {
	Store es.Store
	Now   func() time.Time
}

// PostedMessage is what PostMessageHandler recorded: the message as its
// event holds it, the stream version of that event and the global position
// of the append (for read-your-writes). A retry of a message posted before
// appends nothing: then Version is 0 and Position es.Start.
type PostedMessage struct {
	Written // ID is the message id
	Message message.Posted
	Version uint64
}

// Handle posts the message. The caller answers from the result: there is no
// need to read the message back.
func (h PostMessageHandler) Handle(ctx context.Context, cmd PostMessage) (PostedMessage, error) {
	body, err := message.ParseContent(cmd.Content)
	if err != nil {
		return PostedMessage{}, err
	}
	meta, err := domain.Object("metadata", cmd.Metadata)
	if err != nil {
		return PostedMessage{}, err
	}
	role := cmd.Role
	if role == "" {
		role = message.User
	}
	if _, err := message.ParseRole(string(role)); err != nil {
		return PostedMessage{}, err
	}
	d := message.Draft{ID: cmd.MessageID, Role: role, Content: body, Metadata: meta, ReplyTo: cmd.ReplyTo, Sources: cmd.Sources}
	if d.ID == uuid.Nil {
		d.ID = uuid.New()
	}
	at := Clock(h.Now)
	// Posting depends only on how the thread started (its organization, its
	// person): load its first event, not the whole history, and append with
	// StreamExists. The message id is the event id, so a retry is recognised
	// by the store.
	var changes []domain.Event
	switch cmd.Kind {
	case session.Kind:
		s, err := sessions(h.Store).Head(ctx, cmd.ThreadID)
		if errors.Is(err, domain.ErrNotFound) {
			return PostedMessage{}, session.ErrNotFound
		}
		if err != nil {
			return PostedMessage{}, err
		}
		if _, err := s.PostMessage(d, at); err != nil {
			return PostedMessage{}, err
		}
		changes = s.Changes()
	case conversation.Kind:
		c, err := conversations(h.Store).Head(ctx, cmd.ThreadID)
		if errors.Is(err, domain.ErrNotFound) {
			return PostedMessage{}, conversation.ErrNotFound
		}
		if err != nil {
			return PostedMessage{}, err
		}
		if err := h.personNotErased(ctx, c); err != nil {
			return PostedMessage{}, err
		}
		if _, err := c.PostMessage(d, at); err != nil {
			return PostedMessage{}, err
		}
		changes = c.Changes()
	default:
		return PostedMessage{}, fmt.Errorf("post message: unknown thread kind %q", cmd.Kind)
	}
	out := PostedMessage{Written: Written{ID: d.ID}}
	for _, e := range changes {
		if p, ok := e.(message.Posted); ok && p.MessageID == d.ID {
			out.Message = p
		}
	}
	res, err := Append(ctx, h.Store, StreamName(cmd.Kind, cmd.ThreadID), es.StreamExists, changes)
	if errors.Is(err, es.ErrDuplicateEventID) {
		// Posted before (a retry at another time): nothing new to wait for.
		return out, nil
	}
	if err != nil {
		return PostedMessage{}, err
	}
	// One event appended (or found stored): the stream's version is its own.
	out.Version, out.Position = res.NextExpectedVersion, res.Position
	return out, nil
}

// personNotErased refuses messages into a conversation whose person was
// erased: their content would be that person's data again.
func (h PostMessageHandler) personNotErased(ctx context.Context, c *conversation.Conversation) error {
	if c.UserContextID() == uuid.Nil {
		return nil
	}
	l, err := userContexts(h.Store).Load(ctx, c.UserContextID())
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return err
	}
	if err != nil || !l.Aggregate.Exists() {
		return conversation.ErrPersonErased
	}
	return nil
}
