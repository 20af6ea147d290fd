package commands

import (
	"context"
	"errors"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/thread"
	"github.com/companin/companin/domain/usercontext"
	"github.com/google/uuid"
)

// PostMessage adds a message to a session or a conversation: a user's
// message from the API (the reply worker records replies through the thread
// itself, AnswerMessageHandler, as it has the thread loaded already).
type PostMessage struct {
	Kind     thread.Kind
	ThreadID uuid.UUID
	// MessageID: uuid.Nil chooses a new one.
	MessageID uuid.UUID
	// Role: "" is message.User.
	Role     message.Role
	Content  string
	Metadata map[string]any
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
	d := message.Draft{ID: cmd.MessageID, Role: role, Content: body, Metadata: meta}
	if d.ID == uuid.Nil {
		d.ID = uuid.New()
	}
	// Posting depends only on how the thread started (its organization, its
	// person): load its first event, not the whole history, and append with
	// StreamExists. The message id is the event id, so a retry is recognised
	// by the store.
	t, err := threads(h.Store, cmd.Kind).Head(ctx, cmd.ThreadID)
	if errors.Is(err, domain.ErrNotFound) {
		return PostedMessage{}, cmd.Kind.NotFound()
	}
	if err != nil {
		return PostedMessage{}, err
	}
	person, err := loadPerson(ctx, h.Store, t.Person())
	if err != nil {
		return PostedMessage{}, err
	}
	p, err := t.PostMessage(d, person, Clock(h.Now))
	if err != nil {
		return PostedMessage{}, err
	}
	out := PostedMessage{Written: Written{ID: d.ID}, Message: p}
	res, err := Append(ctx, h.Store, cmd.Kind.Stream(cmd.ThreadID), es.StreamExists, t.Changes())
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

// loadPerson loads the user context id, if any: nil for uuid.Nil or a
// context that is not found (the thread takes both as gone).
func loadPerson(ctx context.Context, store es.Store, id uuid.UUID) (*usercontext.UserContext, error) {
	if id == uuid.Nil {
		return nil, nil
	}
	l, err := userContexts(store).Load(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return l.Aggregate, nil
}
