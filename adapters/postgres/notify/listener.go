// Package notify keeps a process's one PostgreSQL LISTEN connection. The
// event store (new events), the consumer runtime (checkpoints that moved,
// jobs to claim) and the reply hub (reply progress) each subscribe to their
// channels by name on one Listener, built once in cmd/companin: one
// connection, one reconnect loop.
//
// Notifications are hints, never the truth. PostgreSQL drops those sent while
// a listener is away, so every handler is told when that may have happened
// (Reset) and its waiters must look at the database again.
package notify

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Handler hears the channels it subscribed to. Both methods run on the
// listener's goroutine and must not block.
type Handler interface {
	// Notify is one notification on one of the handler's channels.
	Notify(channel, payload string)
	// Reset says that notifications may have been missed. listening is true
	// once LISTEN on the handler's channels has taken effect on a new
	// connection (anything sent before it is lost: look again), false when
	// the connection broke or the listener stopped (until the next Reset(true)
	// nothing is heard: fall back to reading the database).
	Reset(listening bool)
}

// Listener holds one connection LISTENing on every subscribed channel and
// reconnects with backoff when it breaks. Build it with New, subscribe, and
// Run it; Subscribe may also be called while it runs (the connection is then
// renewed, and every handler reset).
type Listener struct {
	config *pgx.ConnConfig
	log    *slog.Logger

	mu    sync.Mutex
	subs  []subscription
	renew context.CancelFunc // ends the current connection, to LISTEN on new channels
}

type subscription struct {
	h        Handler
	channels []string
}

// New returns a listener that connects with config (a pool's
// Config().ConnConfig: the listener's connection is its own, not the
// pool's). It does no I/O until Run. A nil log is slog.Default().
func New(config *pgx.ConnConfig, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.Default()
	}
	return &Listener{config: config.Copy(), log: log}
}

// Subscribe sends the notifications of channels to h. Channel names are
// identifiers (letters, digits, underscores), fixed in code.
func (l *Listener) Subscribe(h Handler, channels ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subs = append(l.subs, subscription{h: h, channels: slices.Clone(channels)})
	if l.renew != nil {
		l.renew() // LISTEN on the new channels too
	}
}

// Run listens until ctx ends, reconnecting on failure (backoff from 100 ms
// to 5 s). When it returns every handler has been reset with listening false.
func (l *Listener) Run(ctx context.Context) {
	delay := 100 * time.Millisecond
	defer l.reset(false)
	for ctx.Err() == nil {
		connected, err := l.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		l.reset(false)
		if err == nil {
			continue // renewed for a new subscription
		}
		if connected {
			delay = 100 * time.Millisecond
		}
		l.log.Warn("notify: listener lost its connection, reconnecting", "error", err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// listenOnce connects, LISTENs on every subscribed channel and relays
// notifications until the connection fails, ctx ends or Subscribe asks for a
// new connection (then err is nil). connected tells whether LISTEN took effect.
func (l *Listener) listenOnce(parent context.Context) (connected bool, err error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	l.mu.Lock()
	l.renew = cancel
	subs := slices.Clone(l.subs)
	l.mu.Unlock()
	renewed := func() bool { return ctx.Err() != nil && parent.Err() == nil }

	conn, err := pgx.ConnectConfig(ctx, l.config)
	if err != nil {
		if renewed() {
			err = nil
		}
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var sql string
	byChannel := map[string][]Handler{}
	for _, s := range subs {
		for _, c := range s.channels {
			if byChannel[c] == nil {
				sql += "LISTEN " + pgx.Identifier{c}.Sanitize() + ";"
			}
			byChannel[c] = append(byChannel[c], s.h)
		}
	}
	if sql != "" {
		if _, err := conn.Exec(ctx, sql); err != nil {
			if renewed() {
				err = nil
			}
			return false, err
		}
	}
	for _, s := range subs {
		s.h.Reset(true)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if renewed() {
				err = nil
			}
			return true, err
		}
		for _, h := range byChannel[n.Channel] {
			h.Notify(n.Channel, n.Payload)
		}
	}
}

func (l *Listener) reset(listening bool) {
	l.mu.Lock()
	subs := slices.Clone(l.subs)
	l.mu.Unlock()
	for _, s := range subs {
		s.h.Reset(listening)
	}
}
