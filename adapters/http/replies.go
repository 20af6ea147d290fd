package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/companin/companin/adapters/replies"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/answer"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/domain/thread"
	"github.com/google/uuid"
	"github.com/gorilla/mux"
)

// This file answers POST .../messages with the assistant's reply (SPEC
// "Answers"): threadHandlers.postMessage records the user's message, then
// hands over to respondWithReply. It waits for the reply
// worker, woken by its notifications (adapters/replies), never by a timer.

// Reply statuses of a posted message.
const (
	replyCompleted = "completed"
	replyPending   = "pending"
	replyFailed    = "failed"
)

// maxReplyWait caps ?wait= and COMPANIN_REPLY_WAIT: a client may ask to wait
// less, or longer than the default, but not forever. Longer asks are clamped
// to it, never read as "no wait".
const maxReplyWait = 2 * time.Minute

// awaitedMessage is what the POST .../messages handlers know once the user's
// message is recorded.
type awaitedMessage struct {
	Stream   string // thread.Kind.Stream(id)
	Message  message.Posted
	Version  uint64      // of its event in Stream: the reply comes after it, read from there on
	Position es.Position // of the append, for read-your-writes
}

// messageWithReplyDTO is the data of POST .../messages.
type messageWithReplyDTO struct {
	ID          uuid.UUID      `json:"id"`
	Role        string         `json:"role"`
	Content     string         `json:"content"`
	Metadata    map[string]any `json:"metadata"`
	CreatedAt   time.Time      `json:"created_at"`
	ReplyStatus string         `json:"reply_status"`
	Reply       *replyDTO      `json:"reply"`
	// ReplyError tells why a reply failed (reply_status "failed").
	ReplyError *replyErrorDTO `json:"reply_error,omitempty"`
}

type replyDTO struct {
	ID        uuid.UUID        `json:"id"`
	Role      string           `json:"role"`
	Content   string           `json:"content"`
	Sources   []message.Source `json:"sources"`
	CreatedAt time.Time        `json:"created_at"`
}

type replyErrorDTO struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// outcome is what became of a user message's reply.
type outcome struct {
	status   string
	reply    *replyDTO
	failure  *replyErrorDTO
	position es.Position // of the reply's event
}

func (m awaitedMessage) dto(o outcome) messageWithReplyDTO {
	meta := m.Message.Metadata
	if meta == nil {
		meta = map[string]any{}
	}
	return messageWithReplyDTO{ID: m.Message.MessageID, Role: string(message.User), Content: m.Message.Content, Metadata: meta,
		CreatedAt: m.Message.PostedAt.UTC(), ReplyStatus: o.status, Reply: o.reply, ReplyError: o.failure}
}

// replyTypes are the events that settle a user message: its reply or the failure.
var replyTypes = []string{message.TypePosted, answer.TypeReplyFailed}

// respondWithReply answers a POST .../messages whose user message is
// recorded: 201 with the reply when it comes within the wait, else 202
// pending; with Accept: text/event-stream, the reply streamed as it grows.
func (s *Server) respondWithReply(w http.ResponseWriter, r *http.Request, m awaitedMessage) {
	if wantsEventStream(r) {
		s.waitForProjections(r, m.Position, message.TypePosted)
		s.streamReply(w, r, m, 0)
		return
	}
	wait, err := s.replyWait(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if s.deps.Replies == nil {
		wait = 0 // nobody answers: do not keep the client waiting
	}
	o := outcome{status: replyPending}
	if wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		o, err = s.awaitReply(ctx, m, nil)
		cancel()
		if err != nil && r.Context().Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			loggerFrom(r).ErrorContext(r.Context(), "await reply", "err", err)
		}
	}
	switch o.status {
	case replyPending:
		s.waitForProjections(r, m.Position, message.TypePosted)
		writeData(w, r, http.StatusAccepted, m.dto(o))
	default:
		s.waitForProjections(r, o.position, replyTypes...)
		writeData(w, r, http.StatusCreated, m.dto(o))
	}
}

// replyWait is COMPANIN_REPLY_WAIT, or ?wait= in seconds (or a duration like
// 1500ms), within 0 to maxReplyWait: more is clamped to it (in floating
// point, before any conversion could overflow), a negative or unreadable
// value is a 422.
func (s *Server) replyWait(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return min(s.cfg.ReplyWait, maxReplyWait), nil
	}
	bad := invalid(FieldError{Field: "wait", Message: fmt.Sprintf("must be a number of seconds from 0 to %d, e.g. 0 or 10", int(maxReplyWait.Seconds()))})
	if n, err := strconv.ParseFloat(v, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case math.IsNaN(n) || n < 0:
			return 0, bad
		case n >= maxReplyWait.Seconds():
			return maxReplyWait, nil
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, bad
	}
	return min(d, maxReplyWait), nil
}

func wantsEventStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// awaitReply waits until the message has its reply or failure, or ctx ends
// (then: pending). sub, if given, is used instead of a new subscription.
func (s *Server) awaitReply(ctx context.Context, m awaitedMessage, sub *replies.Subscription) (outcome, error) {
	if sub == nil {
		sub = s.deps.Replies.Subscribe(m.Stream)
		defer sub.Close()
	}
	from := m.Version + 1
	for {
		o, next, err := s.replyOutcome(ctx, m, from)
		if err != nil || o.status != replyPending {
			return o, err
		}
		from = next
		select {
		case <-sub.C:
		case <-ctx.Done():
			return outcome{status: replyPending}, nil
		}
	}
}

// replyOutcome reads the stream from version from on for the reply to m; next
// is where to read from next time.
func (s *Server) replyOutcome(ctx context.Context, m awaitedMessage, from uint64) (outcome, uint64, error) {
	replyID := answer.ReplyID(m.Message.MessageID)
	events, err := s.deps.Store.ReadStream(ctx, m.Stream, from, 0)
	if err != nil {
		if ctx.Err() != nil {
			return outcome{status: replyPending}, from, nil
		}
		return outcome{status: replyPending}, from, fmt.Errorf("read %s: %w", m.Stream, err)
	}
	next := from
	for _, e := range events {
		next = e.Version + 1
		if e.ID != replyID {
			continue
		}
		de, err := thread.Decode(e.Type, e.Data)
		if err != nil {
			return outcome{}, next, fmt.Errorf("decode reply %s: %w", e.ID, err)
		}
		switch de := de.(type) {
		case message.Posted:
			sources := de.Sources
			if sources == nil {
				sources = []message.Source{}
			}
			return outcome{status: replyCompleted, position: e.Position, reply: &replyDTO{
				ID: de.MessageID, Role: string(de.Role), Content: de.Content, Sources: sources, CreatedAt: de.PostedAt.UTC(),
			}}, next, nil
		case answer.ReplyFailed:
			return outcome{status: replyFailed, position: e.Position,
				failure: &replyErrorDTO{Code: de.Reason, Message: de.Detail}}, next, nil
		}
	}
	return outcome{status: replyPending}, next, nil
}

// SSE event ids are "<message id>:<n>", n the number of reply characters
// sent so far: a client that reconnects with Last-Event-ID gets the rest.
func sseID(id uuid.UUID, n int) string { return id.String() + ":" + strconv.Itoa(n) }

func parseSSEID(s string) (uuid.UUID, int, bool) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return uuid.Nil, 0, false
	}
	id, err := uuid.Parse(a)
	n, err2 := strconv.Atoi(b)
	if err != nil || err2 != nil || n < 0 {
		return uuid.Nil, 0, false
	}
	return id, n, true
}

// resumeReply handles a POST .../messages that carries Last-Event-ID from an
// earlier reply stream: it records nothing and streams the rest of that
// reply. It reports whether it answered (the caller must then stop). A
// stream that is not the caller's, or an unknown message, is notFound.
func (s *Server) resumeReply(w http.ResponseWriter, r *http.Request, stream string, notFound error) bool {
	last := r.Header.Get("Last-Event-ID")
	if last == "" || !wantsEventStream(r) {
		return false
	}
	id, n, ok := parseSSEID(last)
	if !ok {
		writeError(w, r, invalid(FieldError{Field: "Last-Event-ID", Message: "is not an event id this API sent"}))
		return true
	}
	m, err := s.postedMessage(r, stream, id)
	if errors.Is(err, domain.ErrNotFound) {
		writeError(w, r, notFound)
		return true
	}
	if err != nil {
		writeError(w, r, err)
		return true
	}
	if m.Message.Role == message.User {
		s.streamReply(w, r, m, n)
		return true
	}
	writeError(w, r, invalid(FieldError{Field: "Last-Event-ID", Message: "names no message of this conversation"}))
	return true
}

// postedMessage finds message id in stream. The messages read model knows
// its version (the stream that announced it waited for the read models), so
// one event is read, not the stream from its start; a message not projected
// yet is looked for through the whole stream. m.Message is zero when the
// stream holds no such message; a missing stream, or another
// organization's, is domain.ErrNotFound.
func (s *Server) postedMessage(r *http.Request, stream string, id uuid.UUID) (m awaitedMessage, err error) {
	var events []es.Event
	if known, err := s.app.Queries.GetMessage.Handle(r.Context(), orgOf(r), id); err == nil && known.Version > 0 {
		events, _ = s.deps.Store.ReadStream(r.Context(), stream, uint64(known.Version), 1)
	}
	if len(events) != 1 || events[0].ID != id || events[0].Metadata.OrganizationID != orgOf(r) {
		if events, err = commands.ReadStream(r.Context(), s.deps.Store, stream); err != nil {
			return m, err
		}
	}
	for _, e := range events {
		if e.Type != message.TypePosted || e.ID != id {
			continue
		}
		de, err := thread.Decode(e.Type, e.Data)
		if err != nil {
			return m, fmt.Errorf("decode %s: %w", e.ID, err)
		}
		return awaitedMessage{Stream: stream, Message: de.(message.Posted), Version: e.Version, Position: e.Position}, nil
	}
	return m, nil
}

// streamReply sends the reply to m as Server-Sent Events: message.created,
// reply.delta as the text grows, then reply.completed (with sources) or
// error. from > 0 resumes after that many characters of the reply.
func (s *Server) streamReply(w http.ResponseWriter, r *http.Request, m awaitedMessage, from int) {
	// The same bound as without streaming: COMPANIN_REPLY_WAIT or ?wait=,
	// at most maxReplyWait.
	wait, err := s.replyWait(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	sub := s.deps.Replies.Subscribe(m.Stream)
	defer sub.Close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(event, id string, data any) bool {
		b, err := json.Marshal(data)
		if err != nil {
			return false
		}
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(w, "event: %s\nid: %s\ndata: %s\n\n", event, id, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	mid := m.Message.MessageID

	if from == 0 && !send("message.created", sseID(mid, 0), m.dto(outcome{status: replyPending})) {
		return
	}
	replyID := answer.ReplyID(mid)
	sent := from
	version := m.Version + 1
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		o, next, err := s.replyOutcome(ctx, m, version)
		if err != nil {
			send("error", sseID(mid, sent), replyErrorDTO{Code: "internal_error", Message: "the reply could not be read"})
			return
		}
		version = next
		switch o.status {
		case replyCompleted:
			if rest := runesFrom(o.reply.Content, sent); rest != "" {
				if strings.HasPrefix(o.reply.Content, prefixRunes(o.reply.Content, sent)) {
					sent += utf8.RuneCountInString(rest)
					if !send("reply.delta", sseID(mid, sent), deltaDTO{MessageID: mid, ReplyID: replyID, Delta: rest}) {
						return
					}
				}
			}
			s.waitForProjections(r, o.position, replyTypes...)
			send("reply.completed", sseID(mid, sent), m.dto(o))
			return
		case replyFailed:
			send("error", sseID(mid, sent), o.failure)
			return
		}
		if piece, _ := sub.Text(replyID, sent); piece != "" {
			sent += utf8.RuneCountInString(piece)
			if !send("reply.delta", sseID(mid, sent), deltaDTO{MessageID: mid, ReplyID: replyID, Delta: piece}) {
				return
			}
		}
		select {
		case <-sub.C:
		case <-heartbeat.C:
			_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-ctx.Done():
			if r.Context().Err() == nil {
				send("error", sseID(mid, sent), replyErrorDTO{Code: "reply_timeout",
					Message: "the reply is taking longer than expected; it will appear in the messages when ready"})
			}
			return
		}
	}
}

type deltaDTO struct {
	MessageID uuid.UUID `json:"message_id"`
	ReplyID   uuid.UUID `json:"reply_id"`
	Delta     string    `json:"delta"`
}

func runesFrom(s string, n int) string {
	for i := 0; i < n && s != ""; i++ {
		_, size := utf8.DecodeRuneInString(s)
		s = s[size:]
	}
	return s
}

func prefixRunes(s string, n int) string {
	return s[:len(s)-len(runesFrom(s, n))]
}

type feedbackRequest struct {
	Rating  *string `json:"rating"`
	Comment *string `json:"comment"`
}

type feedbackDTO struct {
	MessageID uuid.UUID `json:"message_id"`
	Rating    *string   `json:"rating"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"created_at"`
}

// giveFeedback is POST .../messages/{message_id}/feedback: a like, a dislike
// or null (withdrawn) on an assistant reply, with an optional comment.
func (h threadHandlers) giveFeedback(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r, h.kind.NotFound())
	if err != nil {
		writeError(w, r, err)
		return
	}
	mid, err := uuid.Parse(mux.Vars(r)["message_id"])
	if err != nil {
		writeError(w, r, answer.ErrMessageNotFound)
		return
	}
	var req feedbackRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	f, err := h.s.app.Commands.GiveFeedback.Handle(r.Context(), commands.GiveFeedback{
		Kind: h.kind, ThreadID: id, MessageID: mid, Rating: req.Rating, Comment: deref(req.Comment),
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := feedbackDTO{MessageID: f.MessageID, Comment: f.Comment, CreatedAt: f.GivenAt.UTC()}
	if f.Rating != nil {
		v := string(*f.Rating)
		out.Rating = &v
	}
	writeData(w, r, http.StatusCreated, out)
}
