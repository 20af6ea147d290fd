// Package replies carries the reply worker's progress to the HTTP requests
// waiting for it, in any process: the worker publishes the growing text
// (Delta) and the recording of the reply (Done) with PostgreSQL NOTIFY; each
// process hears them through its one notification listener (notify.Listener,
// which calls the hub's Notify and Reset) and wakes the requests waiting on
// that stream. Notifications are hints, never the truth: a waiter re-reads the
// stream's events when woken, so a lost notification only costs a wake-up,
// and after a reconnect every waiter is woken to look again.
package replies

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Channel is the NOTIFY channel of reply progress.
const Channel = "companin_replies"

// flushEvery batches deltas: a model streams tokens faster than it is worth
// notifying each.
const flushEvery = 25 * time.Millisecond

// keepFor is how long a finished reply's text stays in the buffer, for
// clients that subscribe or resume late.
const keepFor = 2 * time.Minute

// maxPayload keeps a notification below PostgreSQL's 8000-byte limit.
const maxPayload = 6000

type note struct {
	Stream string    `json:"s"`
	Reply  uuid.UUID `json:"r"`
	Offset int       `json:"o"` // rune offset of Text in the reply
	Text   string    `json:"t,omitempty"`
	Done   bool      `json:"d,omitempty"`
}

// Hub publishes and listens. Build one per process with NewHub.
type Hub struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	pubMu   sync.Mutex
	pending map[uuid.UUID]*outgoing

	mu        sync.Mutex
	listening bool
	ready     chan struct{} // closed when listening becomes true
	subs      map[string]map[*Subscription]struct{}
	texts     map[uuid.UUID]*text
}

type outgoing struct {
	stream string
	offset int // runes published so far
	buf    []byte
	timer  *time.Timer
}

type text struct {
	b        []byte // the reply's text as received, in order
	runes    int
	done     bool
	finished time.Time
}

// NewHub returns a hub that publishes through pool. To hear progress (its
// Subscribe), subscribe it to the process's notification listener on
// Channel: l.Subscribe(hub, replies.Channel). A hub that only publishes (a
// process that runs the reply worker but serves no requests) needs no listener.
func NewHub(pool *pgxpool.Pool, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.Default()
	}
	return &Hub{pool: pool, log: log, pending: map[uuid.UUID]*outgoing{}, ready: make(chan struct{}),
		subs: map[string]map[*Subscription]struct{}{}, texts: map[uuid.UUID]*text{}}
}

// Delta implements commands.ReplyNotifier: text is the next piece of the
// reply replyID in stream. Pieces are sent in batches.
func (h *Hub) Delta(ctx context.Context, stream string, replyID uuid.UUID, piece string) {
	h.pubMu.Lock()
	defer h.pubMu.Unlock()
	o, ok := h.pending[replyID]
	if !ok {
		o = &outgoing{stream: stream}
		h.pending[replyID] = o
	}
	o.buf = append(o.buf, piece...)
	if o.timer == nil {
		o.timer = time.AfterFunc(flushEvery, func() {
			h.pubMu.Lock()
			defer h.pubMu.Unlock()
			h.flushLocked(context.Background(), replyID)
		})
	}
}

// Done implements commands.ReplyNotifier: the reply is recorded in the stream.
func (h *Hub) Done(ctx context.Context, stream string, replyID uuid.UUID) {
	h.pubMu.Lock()
	h.flushLocked(ctx, replyID)
	delete(h.pending, replyID)
	h.pubMu.Unlock()
	h.notify(ctx, note{Stream: stream, Reply: replyID, Done: true})
}

func (h *Hub) flushLocked(ctx context.Context, replyID uuid.UUID) {
	o, ok := h.pending[replyID]
	if !ok {
		return
	}
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	for len(o.buf) > 0 {
		n := min(len(o.buf), maxPayload)
		for n < len(o.buf) && !utf8.RuneStart(o.buf[n]) {
			n--
		}
		chunk := string(o.buf[:n])
		h.notify(ctx, note{Stream: o.stream, Reply: replyID, Offset: o.offset, Text: chunk})
		o.offset += utf8.RuneCountInString(chunk)
		o.buf = o.buf[n:]
	}
}

func (h *Hub) notify(ctx context.Context, n note) {
	b, err := json.Marshal(n)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := h.pool.Exec(ctx, "SELECT pg_notify($1, $2)", Channel, string(b)); err != nil {
		h.log.Warn("replies: notify", "err", err)
	}
}

// Subscription wakes a waiter when something happens to replies in its stream.
type Subscription struct {
	hub    *Hub
	stream string
	// C receives (coalesced) whenever the stream's replies may have changed.
	C chan struct{}
}

// readyWait bounds how long Subscribe waits for the listener to listen.
const readyWait = 5 * time.Second

// Subscribe returns a subscription to stream's reply progress. Close it when
// done. While the listener is not listening yet (the process is starting, or
// the connection is being renewed) it waits for it a moment, so that the
// waiter misses no progress sent after; the waiter is woken once listening
// resumes in any case.
//
// A nil hub (no reply worker runs anywhere) hears nothing: its subscriptions
// never fire.
func (h *Hub) Subscribe(stream string) *Subscription {
	s := &Subscription{hub: h, stream: stream, C: make(chan struct{}, 1)}
	if h == nil {
		return s
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.listening {
		ready := h.ready
		h.mu.Unlock()
		select {
		case <-ready:
		case <-time.After(readyWait):
		}
		h.mu.Lock()
	}
	if h.subs[stream] == nil {
		h.subs[stream] = map[*Subscription]struct{}{}
	}
	h.subs[stream][s] = struct{}{}
	return s
}

// Close ends the subscription.
func (s *Subscription) Close() {
	if s.hub == nil {
		return
	}
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	delete(s.hub.subs[s.stream], s)
	if len(s.hub.subs[s.stream]) == 0 {
		delete(s.hub.subs, s.stream)
	}
}

// Text returns the part of reply replyID received so far from rune offset
// from on, and whether the worker said it is complete.
func (s *Subscription) Text(replyID uuid.UUID, from int) (string, bool) {
	if s.hub == nil {
		return "", false
	}
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	t, ok := s.hub.texts[replyID]
	if !ok {
		return "", false
	}
	b := t.b
	for i := 0; i < from && len(b) > 0; i++ {
		_, n := utf8.DecodeRune(b)
		b = b[n:]
	}
	return string(b), t.done
}

// Notify implements notify.Handler: progress of a reply, from any process.
func (h *Hub) Notify(_, payload string) {
	var m note
	if json.Unmarshal([]byte(payload), &m) != nil {
		return
	}
	h.receive(m)
}

// Reset implements notify.Handler. Notifications sent while the listener was
// away are lost: every waiter is woken to look at its stream again.
func (h *Hub) Reset(listening bool) {
	h.mu.Lock()
	switch {
	case listening && !h.listening:
		close(h.ready)
	case !listening && h.listening:
		h.ready = make(chan struct{})
	}
	h.listening = listening
	h.mu.Unlock()
	h.wakeAll()
}

func (h *Hub) receive(m note) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	for id, t := range h.texts {
		if now.Sub(t.finished) > keepFor {
			delete(h.texts, id)
		}
	}
	t, ok := h.texts[m.Reply]
	if !ok {
		t = &text{finished: now}
		h.texts[m.Reply] = t
	}
	switch {
	case m.Done:
		t.done, t.finished = true, now
	case m.Offset == t.runes: // in order; a gap (missed notification) is left to the final event
		t.b = append(t.b, m.Text...)
		t.runes += utf8.RuneCountInString(m.Text)
		t.finished = now
	}
	for s := range h.subs[m.Stream] {
		select {
		case s.C <- struct{}{}:
		default:
		}
	}
}

func (h *Hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ss := range h.subs {
		for s := range ss {
			select {
			case s.C <- struct{}{}:
			default:
			}
		}
	}
}
