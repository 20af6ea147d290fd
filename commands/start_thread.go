package commands

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/thread"
	"github.com/companin/companin/domain/usercontext"
	"github.com/google/uuid"
)

// StartThread opens a session (an anonymous visitor's) or a conversation (a
// known customer's) on an assistant. The fields of the other kind are ignored.
type StartThread struct {
	Kind        thread.Kind
	AssistantID uuid.UUID
	Locale      string
	Metadata    map[string]any
	// VisitorID is the widget's visitor id (sessions); "" gets a generated one.
	VisitorID string
	// CustomerID (required) and Title are a conversation's.
	CustomerID string
	Title      string
	// UserContext names a conversation's person by context id or
	// user_reference; "": none.
	UserContext string
}

// StartThreadHandler starts sessions and conversations.
type StartThreadHandler struct {
	Store es.Store
	// References names reservation streams, to find a context by user_reference.
	References ReferenceKeys
	Now        func() time.Time
}

// Handle starts the thread. The assistant must be the caller's
// organization's, exist and be active; an unknown user context is a field
// error.
func (h StartThreadHandler) Handle(ctx context.Context, cmd StartThread) (Written, error) {
	in, err := thread.ParseStart(cmd.Kind, thread.Input{VisitorID: cmd.VisitorID, CustomerID: cmd.CustomerID,
		Title: cmd.Title, Locale: cmd.Locale, Metadata: cmd.Metadata})
	if err != nil {
		return Written{}, err
	}
	if ref := strings.TrimSpace(cmd.UserContext); ref != "" && cmd.Kind == thread.Conversation {
		if in.Person, err = h.person(ctx, ref); err != nil {
			return Written{}, err
		}
	}
	a, err := loadAssistant(ctx, h.Store, cmd.AssistantID)
	if err != nil {
		return Written{}, err
	}
	id := uuid.New()
	res, err := threads(h.Store, cmd.Kind).Create(ctx, id, func(t *thread.Thread) error {
		return t.Start(a, in, Clock(h.Now))
	})
	if err != nil {
		return Written{}, err
	}
	return Written{ID: id, Position: res.Position}, nil
}

// person finds the living user context ref names.
func (h StartThreadHandler) person(ctx context.Context, ref string) (uuid.UUID, error) {
	id, err := UserContextID(ctx, h.Store, h.References, ref)
	if err == nil {
		var l Loaded[*usercontext.UserContext]
		if l, err = userContexts(h.Store).Load(ctx, id); err == nil && !l.Aggregate.Exists() {
			err = usercontext.ErrNotFound // erased
		}
	}
	if errors.Is(err, domain.ErrNotFound) {
		return uuid.Nil, domain.Invalid("user_context_id", "no user context with this id or user_reference")
	}
	return id, err
}
