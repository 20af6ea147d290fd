package commands

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/conversation"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/usercontext"
	"github.com/google/uuid"
)

// StartConversation opens a known customer's conversation with an assistant.
type StartConversation struct {
	AssistantID uuid.UUID
	CustomerID  string
	// UserContext names the person's context by id or user_reference; "": none.
	UserContext string
	Title       string
	Locale      string
	Metadata    map[string]any
}

// StartConversationHandler starts conversations.
type StartConversationHandler struct {
	Store es.Store
	// References names reservation streams, to find a context by user_reference.
	References ReferenceKeys
	Now        func() time.Time
}

// Handle starts the conversation. An unknown user context is a field error.
func (h StartConversationHandler) Handle(ctx context.Context, cmd StartConversation) (Written, error) {
	in, err := conversation.ParseStart(cmd.CustomerID, cmd.Title, cmd.Locale, cmd.Metadata)
	if err != nil {
		return Written{}, err
	}
	if ref := strings.TrimSpace(cmd.UserContext); ref != "" {
		id, err := UserContextID(ctx, h.Store, h.References, ref)
		if err == nil {
			var l Loaded[*usercontext.UserContext]
			if l, err = userContexts(h.Store).Load(ctx, id); err == nil && !l.Aggregate.Exists() {
				err = usercontext.ErrNotFound // erased
			}
		}
		if errors.Is(err, domain.ErrNotFound) {
			return Written{}, domain.Invalid("user_context_id", "no user context with this id or user_reference")
		}
		if err != nil {
			return Written{}, err
		}
		in.UserContextID = id
	}
	a, err := loadAssistant(ctx, h.Store, cmd.AssistantID)
	if err != nil {
		return Written{}, err
	}
	id := uuid.New()
	res, err := conversations(h.Store).Create(ctx, id, func(c *conversation.Conversation) error {
		return c.Start(a, in, Clock(h.Now))
	})
	if err != nil {
		return Written{}, err
	}
	return Written{ID: id, Position: res.Position}, nil
}
