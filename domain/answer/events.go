package answer

import (
	"fmt"
	"strings"
	"time"

	"github.com/companin/companin/domain"
	"github.com/google/uuid"
)

// Event type names, stored in session and conversation streams next to
// MessagePosted: never renamed.
const (
	TypeReplyFailed   = "ReplyFailed"
	TypeFeedbackGiven = "MessageFeedbackGiven"
)

// replyNamespace derives reply ids from user message ids (UUIDv5).
var replyNamespace = uuid.MustParse("5b0c1f0e-5a39-4d36-9f55-2b6a4f1a7c11")

// ReplyID is the id of the reply to the user message with id userMessageID,
// and the event id of the MessagePosted (or ReplyFailed) that records it.
// Every worker derives the same id, so a redelivered or raced message is
// answered at most once: the second append is a replay or a duplicate.
func ReplyID(userMessageID uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(replyNamespace, userMessageID[:])
}

// Reasons a reply fails for good (a retry would not help).
const (
	ReasonAssistantGone = "assistant_deleted"
	ReasonPersonErased  = "person_erased"
	ReasonEmptyQuestion = "empty_question"
	ReasonEngine        = "engine_error"
)

// ReplyFailed records that a user message gets no answer, and why, so a
// waiting client hears it instead of waiting in vain.
type ReplyFailed struct {
	MessageID uuid.UUID `json:"message_id"` // the user message
	ReplyID   uuid.UUID `json:"reply_id"`
	Reason    string    `json:"reason"`
	Detail    string    `json:"detail,omitempty"`
	FailedAt  time.Time `json:"failed_at"`
}

// EventType implements domain.Event.
func (ReplyFailed) EventType() string { return TypeReplyFailed }

// EventID is the reply's id: a message gets a reply or a failure, once.
func (f ReplyFailed) EventID() uuid.UUID { return f.ReplyID }

// Rating is a customer's verdict on a reply; nil withdraws it.
type Rating string

// Ratings.
const (
	Like    Rating = "like"
	Dislike Rating = "dislike"
)

// MaxFeedbackComment bounds a feedback comment, in characters.
const MaxFeedbackComment = 2000

// ErrMessageNotFound: no such message in the session or conversation.
var ErrMessageNotFound = fmt.Errorf("message not found: %w", domain.ErrNotFound)

// ErrNotAReply: feedback is given on the assistant's replies only.
var ErrNotAReply = domain.Invalid("message_id", "feedback can only be given on an assistant reply")

// ParseFeedback validates a client's rating ("like", "dislike" or nil) and comment.
func ParseFeedback(rating *string, comment string) (*Rating, string, error) {
	c, err := domain.Text("comment", comment, MaxFeedbackComment, false)
	if err != nil {
		return nil, "", err
	}
	if rating == nil {
		return nil, c, nil
	}
	switch r := Rating(strings.ToLower(strings.TrimSpace(*rating))); r {
	case Like, Dislike:
		return &r, c, nil
	}
	return nil, "", domain.Invalid("rating", "must be like, dislike or null")
}

// FeedbackGiven (MessageFeedbackGiven) records a customer's rating of a
// reply; the latest one counts.
type FeedbackGiven struct {
	MessageID uuid.UUID `json:"message_id"`
	Rating    *Rating   `json:"rating"`
	Comment   string    `json:"comment,omitempty"`
	GivenAt   time.Time `json:"given_at"`
}

// EventType implements domain.Event.
func (FeedbackGiven) EventType() string { return TypeFeedbackGiven }

func (r Rating) String() string { return string(r) }
