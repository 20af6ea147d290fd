package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/companin/companin/adapters/eventjson"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// eventDTO is how the API shows a stored event, in /events, its NDJSON
// export and SSE tail, and the per-stream history endpoints: the same shape
// the NATS feed publishes.
type eventDTO = eventjson.Event

// toEventDTO shows e; use it for every endpoint that lists events.
func toEventDTO(e es.Event) eventDTO { return eventjson.From(e) }

const (
	exportPage   = 500
	sseHeartbeat = 15 * time.Second
)

// eventQuery is what GET /events and /events/stream read: the caller's
// organization's events, optionally of some types or one stream.
func eventFilter(r *http.Request) (es.Filter, error) {
	q := r.URL.Query()
	f := es.Filter{OrganizationID: principalOf(r).OrganizationID.String()}
	if t := q.Get("types"); t != "" {
		for _, typ := range strings.Split(t, ",") {
			if typ = strings.TrimSpace(typ); typ != "" {
				f.Types = append(f.Types, typ)
			}
		}
		if len(f.Types) > 50 {
			return f, invalid(FieldError{Field: "types", Message: "at most 50 types"})
		}
	}
	if st := q.Get("stream"); st != "" {
		if len(st) > 200 {
			return f, invalid(FieldError{Field: "stream", Message: "is not a stream name"})
		}
		f.Streams = []string{st}
	}
	return f, nil
}

// positionParam reads a resume point: plain printable text, as positions are.
func positionParam(field, value string) (es.Position, error) {
	if len(value) > maxCursorLen {
		return "", invalid(FieldError{Field: field, Message: "is not a position this API returned"})
	}
	for _, c := range value {
		if c < 0x21 || c > 0x7e {
			return "", invalid(FieldError{Field: field, Message: "is not a position this API returned"})
		}
	}
	return es.Position(value), nil
}

// streamSlots counts the open event streams of each organization on this
// instance. A stream holds a connection and wakes on its organization's
// appends; without a bound one organization could open thousands.
type streamSlots struct {
	mu   sync.Mutex
	open map[uuid.UUID]int
}

// acquire takes a slot of org's max, or answers false when all are taken.
func (c *streamSlots) acquire(org uuid.UUID, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[org] >= max {
		return false
	}
	if c.open == nil {
		c.open = map[uuid.UUID]int{}
	}
	c.open[org]++
	return true
}

func (c *streamSlots) release(org uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[org]--; c.open[org] <= 0 {
		delete(c.open, org)
	}
}

// streamSlot takes one of the caller's organization's stream slots, or
// answers 429 and returns false. Call the returned release when the stream ends.
func (s *Server) streamSlot(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	org := principalOf(r).OrganizationID
	if !s.streams.acquire(org, s.cfg.MaxStreamsPerOrg) {
		w.Header().Set("Retry-After", "10")
		writeProblem(w, http.StatusTooManyRequests,
			fmt.Sprintf("Too many open event streams - at most %d per organization; close one first", s.cfg.MaxStreamsPerOrg),
			"too_many_streams", nil)
		return nil, false
	}
	return func() { s.streams.release(org) }, true
}

// listEvents is GET /events: a page of the organization's events in global
// order, or with Accept: application/x-ndjson all of them as an export.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := pageOf(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if a := r.URL.Query().Get("after"); a != "" {
		cursor = a
	}
	after, err := positionParam("after", cursor)
	if err != nil {
		writeError(w, r, err)
		return
	}
	filter, err := eventFilter(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "application/x-ndjson") {
		release, ok := s.streamSlot(w, r)
		if !ok {
			return
		}
		defer release()
		s.exportEvents(w, r, after, filter)
		return
	}
	events, err := s.deps.Store.ReadAll(r.Context(), after, limit+1, filter)
	if err != nil {
		writeError(w, r, s.readError(r, "after", after, err))
		return
	}
	hasMore := len(events) > limit
	if hasMore {
		events = events[:limit]
	}
	out := make([]eventDTO, len(events))
	for i, e := range events {
		out[i] = toEventDTO(e)
	}
	next := string(after)
	if len(events) > 0 {
		next = string(events[len(events)-1].Position)
	}
	writeList(w, r, out, hasMore, next)
}

// readError explains a failed read of the log. Adapters refuse a position
// they never produced with a plain error; if reading from the start works,
// the client's position was the problem: a 422, not a 500.
func (s *Server) readError(r *http.Request, field string, after es.Position, err error) error {
	if after != es.Start && r.Context().Err() == nil {
		if _, probe := s.deps.Store.ReadAll(r.Context(), es.Start, 1, es.Filter{}); probe == nil {
			return invalid(FieldError{Field: field, Message: "is not a position this API returned"})
		}
	}
	return fmt.Errorf("read events: %w", err)
}

// exportEvents streams every matching event as one JSON object per line. An
// explicit ?limit= caps the export.
func (s *Server) exportEvents(w http.ResponseWriter, r *http.Request, after es.Position, filter es.Filter) {
	total := -1
	if r.URL.Query().Get("limit") != "" {
		total, _, _ = pageOf(r)
	}
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	sent := 0
	for total < 0 || sent < total {
		page := exportPage
		if total >= 0 {
			page = min(page, total-sent)
		}
		events, err := s.deps.Store.ReadAll(r.Context(), after, page, filter)
		if err != nil && sent == 0 {
			writeError(w, r, s.readError(r, "after", after, err))
			return
		}
		if err != nil {
			// The status is sent: end the stream; the client sees it short.
			loggerFrom(r).ErrorContext(r.Context(), "export events", "err", err)
			return
		}
		if sent == 0 {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
		}
		for _, e := range events {
			if enc.Encode(toEventDTO(e)) != nil {
				return
			}
		}
		sent += len(events)
		_ = rc.Flush()
		if len(events) < page {
			return
		}
		after = events[len(events)-1].Position
	}
}

// streamEvents is GET /events/stream: the organization's events as
// Server-Sent Events, live. Each event's id is its position, so a client
// resumes with Last-Event-ID (or ?after=). It wakes on new events, not on a
// timer, and sends a heartbeat comment when idle.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	from := r.Header.Get("Last-Event-ID")
	if a := r.URL.Query().Get("after"); a != "" && from == "" {
		from = a
	}
	after, err := positionParam("after", from)
	if err != nil {
		writeError(w, r, err)
		return
	}
	filter, err := eventFilter(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if _, err := s.deps.Store.ReadAll(r.Context(), after, 1, filter); err != nil {
		writeError(w, r, s.readError(r, "Last-Event-ID", after, err))
		return
	}
	release, ok := s.streamSlot(w, r)
	if !ok {
		return
	}
	defer release()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	lastWrite := time.Now()
	write := func(format string, args ...any) bool {
		lastWrite = time.Now()
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: 3000\n\n") {
		return
	}
	ctx := r.Context()
	// The organization's events only, read and waited for through its index
	// (es.WaitFor): a stream costs nothing while other organizations write.
	for ctx.Err() == nil {
		events, err := s.deps.Store.ReadAll(ctx, after, exportPage, filter)
		if err != nil {
			if ctx.Err() == nil {
				loggerFrom(r).ErrorContext(ctx, "stream events", "err", err)
				write("event: error\ndata: {\"detail\":\"reading the event log failed\"}\n\n")
			}
			return
		}
		for _, e := range events {
			after = e.Position
			b, _ := json.Marshal(toEventDTO(e))
			if !write("id: %s\nevent: %s\ndata: %s\n\n", e.Position, e.Type, b) {
				return
			}
		}
		if len(events) == exportPage {
			continue
		}
		wait, cancel := context.WithTimeout(ctx, sseHeartbeat)
		err = es.WaitFor(wait, s.deps.Store, after, filter)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if time.Since(lastWrite) >= sseHeartbeat && !write(": heartbeat\n\n") {
			return
		}
		_ = err // a timeout only means: nothing new, heartbeat and wait again
	}
}
