package messaging

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrUnknownProjection is returned by Rebuild for a name no projection has.
var ErrUnknownProjection = errors.New("unknown projection")

// rebuildBatch is how many events a rebuild or catch-up applies per
// transaction: large enough to be fast, small enough to keep transactions short.
const rebuildBatch = 500

var defaultTx = txConfig{idleTimeout: 30 * time.Second}

// replayTx is how Rebuild and CatchUp apply: they do not wait for each
// transaction to reach the disk (a crash of the database loses the last few,
// checkpoints included, and they are replayed).
var replayTx = txConfig{idleTimeout: defaultTx.idleTimeout, asyncCommit: true}

// HeadReader is implemented by event stores that can tell where the log ends:
// the position of the last committed event, including one that readers
// cannot see yet because an older transaction (anywhere on the server, on
// PostgreSQL) is still running.
type HeadReader interface {
	Head(ctx context.Context) (es.Position, error)
}

// CatchUp processes everything currently in the log through the projections,
// synchronously, each from its checkpoint, with the same exactly-once
// transactions as the runtime. Meant for tests and tools; safe to run while a
// runtime runs the same projections (the checkpoint compare-and-set decides).
//
// When the store is a HeadReader, CatchUp returns only once every projection
// has reached the head as it was at the call, waiting (bounded by ctx) for
// events held back by older transactions. Otherwise it stops at the end of
// what the store lets readers see, which on PostgreSQL can stop short while
// another transaction is open.
func CatchUp(ctx context.Context, store es.Store, pool *pgxpool.Pool, ps ...Projection) error {
	head, err := headOf(ctx, store)
	if err != nil {
		return err
	}
	for _, p := range ps {
		pos, err := ensureCheckpoint(ctx, pool, p.Name())
		if err != nil {
			return err
		}
		if err := replayTo(ctx, store, pool, p, pos, head, true); err != nil {
			return err
		}
	}
	return nil
}

// headOf returns the head of the log if the store can tell, else Start.
func headOf(ctx context.Context, store es.Store) (es.Position, error) {
	h, ok := store.(HeadReader)
	if !ok {
		return es.Start, nil
	}
	head, err := h.Head(ctx)
	if err != nil {
		return es.Start, fmt.Errorf("log head: %w", err)
	}
	return head, nil
}

// replayTo replays until the projection's checkpoint reaches head, waiting
// for events that are committed but not yet visible.
func replayTo(ctx context.Context, store es.Store, pool *pgxpool.Pool, p Projection, pos, head es.Position, shared bool) error {
	for {
		var err error
		if pos, err = replay(ctx, store, pool, p, pos, shared); err != nil {
			return err
		}
		if !head.After(pos) {
			return nil
		}
		if err := store.WaitForEvents(ctx, pos); err != nil {
			return fmt.Errorf("%s: wait for the log up to %s: %w", p.Name(), head, err)
		}
	}
}

// replay applies the log after pos to p, batch by batch, until the end of
// what the store shows, and returns the projection's checkpoint. Events that
// fail deterministically are parked, as the live runner parks them; an
// unclassified failure is tried replayAttempts times, then parked too.
func replay(ctx context.Context, store es.Store, pool *pgxpool.Pool, p Projection, pos es.Position, shared bool) (es.Position, error) {
	filter := es.Filter{}
	t := targetOf(p)
	var (
		failing  es.Event
		failures int
	)
	force := func(e es.Event, err error) (string, bool) {
		if classify(err) != unknown {
			return "", false
		}
		if failing.ID != e.ID {
			failing, failures = e, 0
		}
		if failures++; failures < replayAttempts {
			return "", false
		}
		return reasonText(fmt.Errorf("failed %d times: %w", failures, err)), true
	}
	ahead := readAhead(ctx, store, filter)
	defer ahead.stop()
	for {
		events, err := ahead.read(pos)
		if err != nil {
			return pos, fmt.Errorf("%s: read log: %w", p.Name(), err)
		}
		if len(events) == 0 {
			return pos, nil
		}
		// The next page is read while this one is applied.
		ahead.start(events[len(events)-1].Position)
		next, _, err := applyOrPark(ctx, pool, replayTx, t, shared, pos, events, force)
		pos = next
		if errors.Is(err, errCheckpointMoved) {
			if pos, err = readCheckpoint(ctx, pool, p.Name()); err != nil {
				return pos, err
			}
			continue
		}
		var f *eventFailure
		if errors.As(err, &f) && classify(f.err) == unknown && failures < replayAttempts {
			continue // tried again from pos, up to replayAttempts times
		}
		if err != nil {
			return pos, err
		}
	}
}

// pager reads the log a page ahead of a replay, so that reading a page and
// applying the one before overlap.
type pager struct {
	ctx    context.Context
	cancel context.CancelFunc
	store  es.Store
	filter es.Filter
	from   es.Position // where the page being read ahead starts
	page   chan page   // nil when nothing is being read ahead
}

type page struct {
	events []es.Event
	err    error
}

func readAhead(ctx context.Context, store es.Store, filter es.Filter) *pager {
	ctx, cancel := context.WithCancel(ctx)
	return &pager{ctx: ctx, cancel: cancel, store: store, filter: filter}
}

// start reads the page after from in the background.
func (p *pager) start(from es.Position) {
	p.discard()
	ch := make(chan page, 1)
	p.from, p.page = from, ch
	go func() {
		events, err := p.store.ReadAll(p.ctx, from, rebuildBatch, p.filter)
		ch <- page{events, err}
	}()
}

// read returns the page after from: the one read ahead if it starts there.
func (p *pager) read(from es.Position) ([]es.Event, error) {
	if p.page != nil && p.from == from {
		pg := <-p.page
		p.page = nil
		return pg.events, pg.err
	}
	p.discard()
	return p.store.ReadAll(p.ctx, from, rebuildBatch, p.filter)
}

// discard waits for the page being read ahead, if any, and drops it.
func (p *pager) discard() {
	if p.page != nil {
		<-p.page
		p.page = nil
	}
}

func (p *pager) stop() {
	p.cancel()
	p.discard()
}

// replayAttempts is how often a rebuild or catch-up tries an event that
// fails with an unclassified error before it parks it.
const replayAttempts = 3

// targetOf is how the runners apply p: only the event types it declares, and
// its Marker if it has one.
func targetOf(p Projection) target {
	t := target{name: p.Name(), apply: relevant(p)}
	if m, ok := p.(Marker); ok {
		t.mark = m
	}
	return t
}

// Rebuild empties the read model of the projection called name (of all of ps
// when name is "") and replays the whole log into it, giving the same result
// as having followed the log live. While it runs, no other process applies
// events to that projection: it holds the projection's apply lock exclusively,
// which every live transaction of the projection takes shared before writing,
// so the live runner waits (holding no transaction id) and afterwards resumes
// from the rebuilt checkpoint. Readers of the read model see it partly built
// until the rebuild ends.
func Rebuild(ctx context.Context, store es.Store, pool *pgxpool.Pool, ps []Projection, name string) error {
	var todo []Projection
	for _, p := range ps {
		if name == "" || p.Name() == name {
			todo = append(todo, p)
		}
	}
	if len(todo) == 0 {
		return fmt.Errorf("rebuild %q: %w", name, ErrUnknownProjection)
	}
	for _, p := range todo {
		if err := rebuildOne(ctx, store, pool, p); err != nil {
			return err
		}
	}
	return nil
}

func rebuildOne(ctx context.Context, store es.Store, pool *pgxpool.Pool, p Projection) error {
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("rebuild %s: connect: %w", p.Name(), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Session-level, on a connection of its own: released at the latest when it closes.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, lockApply, lockKey(p.Name())); err != nil {
		return fmt.Errorf("rebuild %s: lock: %w", p.Name(), err)
	}
	tx, err := pool.BeginTx(ctx, defaultTx.begin(0, false))
	if err != nil {
		return fmt.Errorf("rebuild %s: begin: %w", p.Name(), err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := p.Reset(ctx, tx); err != nil {
		return fmt.Errorf("rebuild %s: reset: %w", p.Name(), err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO consumer_checkpoints (name, position) VALUES ($1, '')
		ON CONFLICT (name) DO UPDATE SET position = '', updated_at = now(), last_error = NULL, failed_at = NULL`, p.Name()); err != nil {
		return fmt.Errorf("rebuild %s: reset checkpoint: %w", p.Name(), err)
	}
	// The replay parks again whatever still cannot be applied.
	for _, q := range []string{
		`DELETE FROM consumer_dead_letters WHERE consumer = $1 AND resolved_at IS NULL`,
		`DELETE FROM degraded_entities WHERE consumer = $1`,
	} {
		if _, err := tx.Exec(ctx, q, p.Name()); err != nil {
			return fmt.Errorf("rebuild %s: reset dead letters: %w", p.Name(), err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("rebuild %s: commit reset: %w", p.Name(), err)
	}
	head, err := headOf(ctx, store)
	if err != nil {
		return err
	}
	return replayTo(ctx, store, pool, p, es.Start, head, false)
}

// relevant wraps p.Handle so that it sees only the event types p declares.
func relevant(p Projection) applyFunc {
	t, ok := p.(EventTyper)
	if !ok {
		return p.Handle
	}
	f := es.Filter{Types: t.EventTypes()}
	return func(ctx context.Context, tx pgx.Tx, e es.Event) error {
		if !f.Matches(e) {
			return nil
		}
		return p.Handle(ctx, tx, e)
	}
}
