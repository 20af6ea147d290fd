package messaging

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/companin/companin/adapters/postgres/notify"
	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5/pgxpool"
)

const jobsChannel = "companin_jobs"

// notifier spreads news inside the process: checkpoints that moved (for
// WaitForProjections) and jobs that became claimable (for workers). It learns
// them from this process's own commits and, through the notification
// listener, from every other process's.
type notifier struct {
	mu        sync.Mutex
	changed   chan struct{} // closed and replaced whenever a checkpoint moves
	positions map[string]es.Position
	jobs      map[string]chan struct{}
	// generation counts (re)connections of the listener: notifications may
	// have been missed in between, so waiters re-read the database.
	generation int
	// listening: the listener is connected (LISTEN took effect) in the
	// current generation.
	listening bool
	// readAt is the generation in which a checkpoint's position was last
	// read from the database while listening: from then on every move of it
	// is notified, and waiters need not read it again (fresh).
	readAt map[string]int
	// own is the listener the notifier runs itself (no WithListener).
	own *notify.Listener
}

// WithListener makes the runtime hear other processes' checkpoint moves and
// jobs through l, the process's one notification listener, which the caller
// runs. Without it, Run keeps a listening connection of its own while it runs.
func WithListener(l *notify.Listener) Option { return func(c *config) { c.listener = l } }

// newNotifier subscribes a notifier to l, or to a listener of its own on
// pool when l is nil.
func newNotifier(pool *pgxpool.Pool, l *notify.Listener, log *slog.Logger) *notifier {
	n := &notifier{changed: make(chan struct{}), positions: map[string]es.Position{}, jobs: map[string]chan struct{}{},
		readAt: map[string]int{}}
	if l == nil {
		l = notify.New(pool.Config().ConnConfig, log)
		n.own = l
	}
	l.Subscribe(n, checkpointChannel, jobsChannel)
	return n
}

// checkpoints returns a channel closed at the next checkpoint move, and the generation.
func (n *notifier) checkpoints() (<-chan struct{}, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed, n.generation
}

func (n *notifier) checkpointMoved(name string, pos es.Position) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if pos.After(n.positions[name]) {
		n.positions[name] = pos
	}
	close(n.changed)
	n.changed = make(chan struct{})
}

// fresh tells whether, in generation gen, the listener is connected and the
// positions of names were read from the database since it connected: then
// known is up to date but for notifications on their way, and a waiter
// saves the round trip of reading them again.
func (n *notifier) fresh(names []string, gen int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.listening || n.generation != gen {
		return false
	}
	for _, name := range names {
		if n.readAt[name] != gen {
			return false
		}
	}
	return true
}

// readFromDatabase records that names' positions were read from the
// database after generation gen began (if it has not ended since).
func (n *notifier) readFromDatabase(names []string, gen int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.listening || n.generation != gen {
		return
	}
	for _, name := range names {
		n.readAt[name] = gen
	}
}

// known returns the furthest position this process has seen for name.
func (n *notifier) known(name string) es.Position {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.positions[name]
}

// jobsFor returns a channel closed when worker's jobs next change.
func (n *notifier) jobsFor(worker string) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch, ok := n.jobs[worker]
	if !ok {
		ch = make(chan struct{})
		n.jobs[worker] = ch
	}
	return ch
}

func (n *notifier) jobsChanged(worker string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ch, ok := n.jobs[worker]; ok {
		close(ch)
		delete(n.jobs, worker)
	}
}

// wakeAll wakes every waiter, after notifications may have been lost, and
// starts a new generation, listening or not.
func (n *notifier) wakeAll(listening bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.generation++
	n.listening = listening
	close(n.changed)
	n.changed = make(chan struct{})
	for w, ch := range n.jobs {
		close(ch)
		delete(n.jobs, w)
	}
}

// Notify implements notify.Handler: news from another process (or this one).
func (n *notifier) Notify(channel, payload string) {
	switch channel {
	case checkpointChannel:
		pos, name, ok := strings.Cut(payload, " ")
		if ok {
			n.checkpointMoved(name, es.Position(pos))
		}
	case jobsChannel:
		n.jobsChanged(payload)
	}
}

// Reset implements notify.Handler: notifications may have been lost, so every
// waiter reads the database again.
func (n *notifier) Reset(listening bool) { n.wakeAll(listening) }

// run runs the runtime's own listener, when it was given none (WithListener),
// until ctx ends.
func (n *notifier) run(ctx context.Context) {
	if n.own != nil {
		n.own.Run(ctx)
	}
}
