package messaging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/companin/companin/adapters/postgres/notify"
	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// A Projection writes a read model. Its writes and its checkpoint commit in
// ONE transaction, so it must write only through tx.
type Projection interface {
	// Name is the checkpoint name: never rename a projection, or it starts over.
	Name() string
	// Handle applies one event. Ignore event types you don't care about.
	// Returning an error rolls the event back; it is retried, never skipped.
	// The runners apply many events per transaction and tx queues what
	// Exec sends (one round trip for the batch): Exec returns no rows
	// affected (decide inside the statement instead), a failing statement
	// fails its event later, and arguments must not change after Exec.
	// Query and QueryRow send the queue first, so reads see every write.
	Handle(ctx context.Context, tx pgx.Tx, e es.Event) error
	// Reset empties the projection's tables before a rebuild.
	Reset(ctx context.Context, tx pgx.Tx) error
}

// EventTyper may be implemented by a Projection to say which event types it
// handles. Other events then never reach Handle and cost no transaction each;
// the checkpoint still moves past them.
type EventTyper interface {
	EventTypes() []string
}

// WorkerFunc handles one event of a worker. It runs outside any database
// transaction (it may call an LLM for seconds); its ctx ends when the job's
// lease does. Delivery is at-least-once: make the effect idempotent, for
// example by deriving the ids of appended events from e.ID.
type WorkerFunc func(ctx context.Context, e es.Event) error

// Option configures a Runtime.
type Option func(*config)

type config struct {
	logger          *slog.Logger
	registerer      prometheus.Registerer
	leaderInterval  time.Duration
	lease           time.Duration
	jobTimeout      time.Duration
	maxAttempts     int
	jobBackoff      time.Duration
	jobBackoffMax   time.Duration
	concurrency     int
	concurrencyOf   map[string]int
	batchSize       int
	idleTimeout     time.Duration
	retries         int
	retryInterval   time.Duration
	redeliveryMax   time.Duration
	retention       time.Duration
	parkAfter       int
	leaseSet        bool
	processIdentity string
	listener        *notify.Listener
}

// WithLogger sets the logger of the runtime and its router.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithRegisterer registers the consumer metrics (and the router's) on reg.
// Without it nothing is registered.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(c *config) { c.registerer = reg }
}

// WithLeadershipInterval sets how often a process tries to take over the
// consumers it does not lead, and checks the ones it leads: the fail-over delay.
func WithLeadershipInterval(d time.Duration) Option {
	return func(c *config) { c.leaderInterval = d }
}

// WithLease sets how long a job stays with the process that claimed it
// without news from it (default 6 s): the process renews the lease every
// third of it while the handler runs (a heartbeat), so a job is taken over by
// another process within about one lease after its holder dies, however long
// handlers take. A handler whose lease cannot be renewed (the job was taken
// over, or the database did not answer for most of a lease) has its context
// cancelled before anyone else may take the job. Given without
// WithJobTimeout, it also bounds each handler to 90% of it (a hung handler
// then loses its job like a dead process).
func WithLease(d time.Duration) Option { return func(c *config) { c.lease, c.leaseSet = d, true } }

// WithJobTimeout bounds how long a handler may run (its context's deadline;
// default 5 minutes). Past it the process stops renewing the lease, so a hung
// handler's job goes to another process one lease later.
func WithJobTimeout(d time.Duration) Option { return func(c *config) { c.jobTimeout = d } }

// WithMaxAttempts sets after how many failed attempts (errors or expired
// leases) a job is parked as failed.
func WithMaxAttempts(n int) Option { return func(c *config) { c.maxAttempts = n } }

// WithJobBackoff sets the delay before a failed job is tried again: initial,
// doubled per attempt, capped at max.
func WithJobBackoff(initial, max time.Duration) Option {
	return func(c *config) { c.jobBackoff, c.jobBackoffMax = initial, max }
}

// WithWorkerConcurrency sets how many jobs of each worker one process handles at once.
func WithWorkerConcurrency(n int) Option { return func(c *config) { c.concurrency = n } }

// WithConcurrencyOf sets how many jobs of the named worker one process
// handles at once, in place of WithWorkerConcurrency's number for it: each
// kind of work gets its own slots, sized for what it waits on (a reply for
// the database and a model, an ingestion for a PDF child process).
func WithConcurrencyOf(worker string, n int) Option {
	return func(c *config) {
		if c.concurrencyOf == nil {
			c.concurrencyOf = map[string]int{}
		}
		c.concurrencyOf[worker] = n
	}
}

// concurrencyOf is how many jobs of worker this process handles at once.
func (r *Runtime) concurrencyOf(worker string) int {
	if n, ok := r.cfg.concurrencyOf[worker]; ok && n > 0 {
		return n
	}
	return max(r.cfg.concurrency, 1)
}

// WithIdleInTransactionTimeout bounds how long a consumer transaction may sit
// idle before PostgreSQL ends it, so a stuck consumer cannot hold back readers of the log.
func WithIdleInTransactionTimeout(d time.Duration) Option {
	return func(c *config) { c.idleTimeout = d }
}

// WithRetry sets the router's in-process retries of a failing projection
// event (before it is nacked and redelivered with a growing delay up to redeliveryMax).
func WithRetry(retries int, initial, redeliveryMax time.Duration) Option {
	return func(c *config) { c.retries, c.retryInterval, c.redeliveryMax = retries, initial, redeliveryMax }
}

// WithParkAfter sets after how many failed attempts in a row an event that
// fails with an unclassified error (neither a data error, which is parked at
// once, nor a connection or serialization error, which is retried for ever)
// is parked (default 10, like EventStoreDB's MaxRetryCount). Zero or less:
// never; such an event is retried until it succeeds.
func WithParkAfter(n int) Option { return func(c *config) { c.parkAfter = n } }

// WithJobRetention sets how long done jobs are kept (for audits and
// debugging) before they are deleted; zero keeps them for ever. Parked
// (failed) jobs are always kept.
func WithJobRetention(d time.Duration) Option { return func(c *config) { c.retention = d } }

// Runtime runs a process's share of the consumers. Build it, add consumers,
// then Run it; AddProjection and AddWorker must not be called after Run.
type Runtime struct {
	store   es.Store
	pool    *pgxpool.Pool
	cfg     config
	log     *slog.Logger
	metrics *metrics

	mu          sync.Mutex
	projections []*logConsumer
	workers     []*worker
	names       map[string]bool
	running     bool

	notify *notifier
}

// NewRuntime returns a runtime reading store and keeping checkpoints, leases
// and jobs in the database behind pool (migrations 00020-00039).
func NewRuntime(store es.Store, pool *pgxpool.Pool, opts ...Option) *Runtime {
	cfg := config{
		logger:         slog.Default(),
		leaderInterval: time.Second,
		lease:          6 * time.Second,
		maxAttempts:    5,
		jobBackoff:     time.Second,
		jobBackoffMax:  5 * time.Minute,
		concurrency:    2,
		batchSize:      100,
		idleTimeout:    30 * time.Second,
		retries:        3,
		retryInterval:  100 * time.Millisecond,
		redeliveryMax:  30 * time.Second,
		retention:      7 * 24 * time.Hour,
		parkAfter:      10,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.jobTimeout <= 0 {
		cfg.jobTimeout = 5 * time.Minute
		if cfg.leaseSet {
			cfg.jobTimeout = cfg.lease * 9 / 10
		}
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	cfg.processIdentity = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	r := &Runtime{
		store: store, pool: pool, cfg: cfg, log: cfg.logger,
		metrics: newMetrics(cfg.registerer),
		names:   map[string]bool{},
	}
	r.notify = newNotifier(pool, cfg.listener, cfg.logger)
	if cfg.registerer != nil {
		register(cfg.registerer, prometheus.Collector(newJobsCollector(pool)))
	}
	return r
}

func (r *Runtime) claimName(name string) {
	if name == "" {
		panic("messaging: consumer without a name")
	}
	if r.running {
		panic("messaging: consumer " + name + " added after Run")
	}
	if r.names[name] {
		panic("messaging: two consumers named " + name)
	}
	r.names[name] = true
}

func (r *Runtime) txConfig() txConfig {
	return txConfig{idleTimeout: r.cfg.idleTimeout, asyncCommit: true}
}

// AddProjection registers a projection. It runs in one process at a time.
func (r *Runtime) AddProjection(p Projection) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.claimName(p.Name())
	c := &logConsumer{name: p.Name(), kind: "projection", apply: p.Handle}
	if m, ok := p.(Marker); ok {
		c.mark = m
	}
	if t, ok := p.(EventTyper); ok {
		c.filter = es.Filter{Types: t.EventTypes()}
	}
	r.projections = append(r.projections, c)
}

// AddWorker registers a worker: handle is called for each event matching
// filter, at least once, by whichever process claims it. The name is the
// worker's identity (checkpoint and jobs): never rename one.
func (r *Runtime) AddWorker(name string, filter es.Filter, handle func(ctx context.Context, e es.Event) error, opts ...WorkerOption) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.claimName(name)
	w := newWorker(r, name, filter, handle)
	for _, o := range opts {
		o(w)
	}
	r.workers = append(r.workers, w)
}

// WorkerOption configures one worker.
type WorkerOption func(*worker)

// OnParked sets what a worker does when it gives up on a job (parked as
// failed after WithMaxAttempts attempts, or leases that kept running out):
// typically record the failure as an event, so that what the job was for
// ends in a terminal state (a knowledge source `failed` with the reason)
// instead of waiting for ever. It runs outside any transaction, with the
// job's event and why it was parked, and is tried a few times; it should be
// idempotent.
func OnParked(f func(ctx context.Context, e es.Event, reason string) error) WorkerOption {
	return func(w *worker) { w.onParked = f }
}

// Run runs the consumers until ctx ends: the projections and worker
// dispatchers this process leads, and its share of every worker's jobs.
func (r *Runtime) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return fmt.Errorf("messaging: runtime already running")
	}
	r.running = true
	r.mu.Unlock()
	return r.run(ctx)
}
