package commands

import (
	"context"
	"errors"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/answer"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/thread"
	"github.com/google/uuid"
)

// GiveFeedback rates an assistant reply in a session or conversation.
type GiveFeedback struct {
	Kind      thread.Kind
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
// thread and records the feedback. A missing or foreign thread is the
// kind's not-found error.
func (h GiveFeedbackHandler) Handle(ctx context.Context, cmd GiveFeedback) (Feedback, error) {
	rating, comment, err := answer.ParseFeedback(cmd.Rating, cmd.Comment)
	if err != nil {
		return Feedback{}, err
	}
	var f answer.FeedbackGiven
	res, err := threads(h.Store, cmd.Kind).Update(ctx, cmd.ThreadID, func(t *thread.Thread) (err error) {
		f, err = t.GiveFeedback(cmd.MessageID, rating, comment, Clock(h.Now))
		return err
	})
	if errors.Is(err, domain.ErrNotFound) && !errors.Is(err, answer.ErrMessageNotFound) {
		return Feedback{}, cmd.Kind.NotFound()
	}
	if err != nil {
		return Feedback{}, err
	}
	return Feedback{FeedbackGiven: f, Position: res.Position}, nil
}
