package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/answer"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/message"
	"github.com/google/uuid"
)

// GiveFeedback rates an assistant reply in a session or conversation.
type GiveFeedback struct {
	Kind      string // session.Kind or conversation.Kind
	ThreadID  uuid.UUID
	MessageID uuid.UUID
	Rating    *string // "like", "dislike" or nil (withdrawn)
	Comment   string
}

// GiveFeedbackHandler records MessageFeedbackGiven in the thread's stream.
type GiveFeedbackHandler struct {
	Store es.Store
	Now   func() time.Time
}

// Feedback is the recorded feedback.
type Feedback struct {
	answer.FeedbackGiven
	Position es.Position
}

// Handle checks that the message is an assistant reply of the caller's
// thread and records the feedback. threadNotFound is returned for a missing
// or foreign thread.
func (h GiveFeedbackHandler) Handle(ctx context.Context, cmd GiveFeedback, threadNotFound error) (Feedback, error) {
	rating, comment, err := answer.ParseFeedback(cmd.Rating, cmd.Comment)
	if err != nil {
		return Feedback{}, err
	}
	stream := StreamName(cmd.Kind, cmd.ThreadID)
	for attempt := 1; ; attempt++ {
		events, err := ReadStream(ctx, h.Store, stream)
		if errors.Is(err, domain.ErrNotFound) {
			return Feedback{}, threadNotFound
		}
		if err != nil {
			return Feedback{}, err
		}
		role, found := message.Role(""), false
		for _, e := range events {
			if e.Type == message.TypePosted && e.ID == cmd.MessageID {
				var p message.Posted
				if err := json.Unmarshal(e.Data, &p); err != nil {
					return Feedback{}, fmt.Errorf("feedback: decode %s: %w", e.ID, err)
				}
				role, found = p.Role, true
			}
		}
		if !found {
			return Feedback{}, answer.ErrMessageNotFound
		}
		if role != message.Assistant {
			return Feedback{}, answer.ErrNotAReply
		}
		ev := answer.FeedbackGiven{MessageID: cmd.MessageID, Rating: rating, Comment: comment, GivenAt: Clock(h.Now)}
		res, err := Append(ctx, h.Store, stream, es.Exact(events[len(events)-1].Version), []domain.Event{ev})
		if errors.Is(err, es.ErrWrongExpectedVersion) && attempt < conflictRetries {
			continue
		}
		if err != nil {
			return Feedback{}, err
		}
		return Feedback{FeedbackGiven: ev, Position: res.Position}, nil
	}
}
