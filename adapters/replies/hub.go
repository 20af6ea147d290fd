// Package replies carries the reply worker's progress to the HTTP requests
// waiting for it, in any process: the worker publishes the growing text
// (Delta) and the recording of the reply (Done) with PostgreSQL NOTIFY; each
// process keeps one LISTEN connection and wakes the requests waiting on that
// stream. Notifications are hints, never the truth: a waiter re-reads the
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
	"github.com/jackc/pgx/v5"
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

// Hub publishes and listens. Build one per pool with For.
type Hub struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	pubMu   sync.Mutex
	pending map[uuid.UUID]*outgoing

	mu        sync.Mutex
	listening bool
	stop      context.CancelFunc
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

var (
	hubsMu sync.Mutex
	hubs   = map[*pgxpool.Pool]*Hub{}
)

// For returns the process's hub on pool, creating it on first use.
func For(pool *pgxpool.Pool) *Hub {
	hubsMu.Lock()
	defer hubsMu.Unlock()
	h, ok := hubs[pool]
	if !ok {
		h = &Hub{pool: pool, log: slog.Default(), pending: map[uuid.UUID]*outgoing{},
			subs: map[string]map[*Subscription]struct{}{}, texts: map[uuid.UUID]*text{}}
		hubs[pool] = h
	}
	return h
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

// Close stops listening and forgets the hub; For builds a new one after.
func (h *Hub) Close() {
	hubsMu.Lock()
	if hubs[h.pool] == h {
		delete(hubs, h.pool)
	}
	hubsMu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop != nil {
		h.stop()
	}
}

// Subscription wakes a waiter when something happens to replies in its stream.
type Subscription struct {
	hub    *Hub
	stream string
	// C receives (coalesced) whenever the stream's replies may have changed.
	C chan struct{}
}

// Subscribe starts listening (once per process) and returns a subscription
// to stream's reply progress. Close it when done.
func (h *Hub) Subscribe(stream string) *Subscription {
	s := &Subscription{hub: h, stream: stream, C: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.listening {
		h.listening = true
		ctx, cancel := context.WithCancel(context.Background())
		h.stop = cancel
		ready := make(chan struct{})
		go h.listen(ctx, ready)
		h.mu.Unlock()
		select { // the first subscriber waits for LISTEN, so it misses nothing sent after
		case <-ready:
		case <-time.After(5 * time.Second):
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

func (h *Hub) listen(ctx context.Context, ready chan struct{}) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := h.listenOnce(ctx, ready)
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("replies: listener reconnecting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (h *Hub) listenOnce(ctx context.Context, ready chan struct{}) error {
	conn, err := pgx.ConnectConfig(ctx, h.pool.Config().ConnConfig)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	h.wakeAll() // notifications sent while away are lost: look again
	select {
	case <-ready:
	default:
		close(ready)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var m note
		if json.Unmarshal([]byte(n.Payload), &m) != nil {
			continue
		}
		h.receive(m)
	}
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
