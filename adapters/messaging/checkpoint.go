package messaging

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Advisory lock classes (the two-int form, which never collides with the
// one-bigint locks the event store takes per stream).
const (
	// lockLeader is held, session-level, by the one process that runs a consumer.
	lockLeader = 0x436f6e73 // "Cons"
	// lockApply is taken shared by every transaction that applies events to a
	// consumer and exclusive by a rebuild, so nothing applies while one runs.
	lockApply = 0x52656275 // "Rebu"
)

const checkpointChannel = "companin_checkpoints"

// errCheckpointMoved means another runner committed the consumer's checkpoint
// since this one read it: the batch was rolled back and must be re-read.
var errCheckpointMoved = errors.New("messaging: checkpoint moved by another runner")

// lockKey maps a consumer name to its advisory lock key; the same in every process.
func lockKey(name string) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return int32(h.Sum32())
}

// txConfig says how a consumer transaction begins.
type txConfig struct {
	// idleTimeout bounds how long the transaction may sit idle: a stuck
	// consumer must not hold a transaction id that holds back log readers.
	idleTimeout time.Duration
	// asyncCommit commits without waiting for the WAL to reach the disk:
	// a transaction lost in a database crash takes its checkpoint with it,
	// and its events are applied again from the log (see the package doc).
	asyncCommit bool
}

func (c txConfig) begin(key int32, sharedApplyLock bool) pgx.TxOptions {
	q := fmt.Sprintf("BEGIN; SET LOCAL idle_in_transaction_session_timeout = %d", max(c.idleTimeout.Milliseconds(), 1))
	if c.asyncCommit && !oldRunner {
		q += "; SET LOCAL synchronous_commit = off"
	}
	if sharedApplyLock {
		// Before any write, so a transaction waiting for a rebuild holds no xid.
		q += fmt.Sprintf("; SELECT pg_advisory_xact_lock_shared(%d, %d)", lockApply, key)
	}
	return pgx.TxOptions{BeginQuery: q}
}

func ensureCheckpoint(ctx context.Context, pool *pgxpool.Pool, name string) (es.Position, error) {
	var pos string
	err := pool.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO consumer_checkpoints (name) VALUES ($1)
			ON CONFLICT (name) DO NOTHING RETURNING position)
		SELECT position FROM ins
		UNION ALL SELECT position FROM consumer_checkpoints WHERE name = $1`, name).Scan(&pos)
	if err != nil {
		return es.Start, fmt.Errorf("checkpoint %s: %w", name, err)
	}
	return es.Position(pos), nil
}

func readCheckpoint(ctx context.Context, pool *pgxpool.Pool, name string) (es.Position, error) {
	var pos string
	err := pool.QueryRow(ctx, `SELECT position FROM consumer_checkpoints WHERE name = $1`, name).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return es.Start, nil
	}
	if err != nil {
		return es.Start, fmt.Errorf("checkpoint %s: %w", name, err)
	}
	return es.Position(pos), nil
}

// recordFailure notes on the checkpoint row why the consumer is stuck. Best effort.
func recordFailure(ctx context.Context, pool *pgxpool.Pool, name string, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = pool.Exec(ctx, `UPDATE consumer_checkpoints SET last_error = $2, failed_at = now() WHERE name = $1`, name, cause.Error())
}

// applyFunc is what a consumer does with one event inside its transaction.
type applyFunc func(ctx context.Context, tx pgx.Tx, e es.Event) error

// applyTx applies events in one transaction and moves the consumer's
// checkpoint from prev to the last event's position in the same transaction:
// the effect of each event commits exactly once. The events write through a
// batchTx: their statements reach the database in one round trip, with the
// checkpoint's compare-and-set, unless sync. With p, the last event is parked
// (a dead letter, and t's mark) instead of applied. It returns
// errCheckpointMoved, having rolled back, when the checkpoint is no longer at
// prev, an *eventFailure when an event fails, and an *unpinnedFailure when a
// batched statement failed in a way that does not say whose it was.
func applyTx(ctx context.Context, pool *pgxpool.Pool, cfg txConfig, t target, sharedApplyLock bool,
	prev es.Position, events []es.Event, p *parking, sync bool) error {
	if len(events) == 0 {
		return nil
	}
	tx, err := pool.BeginTx(ctx, cfg.begin(lockKey(t.name), sharedApplyLock))
	if err != nil {
		return fmt.Errorf("%s: begin: %w", t.name, err)
	}
	committed := false
	defer func() {
		// Also when apply panics: an open transaction would keep its
		// connection and its row locks until the idle timeout.
		if !committed {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	applied := events
	if p != nil {
		applied = events[:len(events)-1]
	}
	w := newBatchTx(tx, sync || oldRunner)
	failed := func(f *batchFailure) error {
		if f.event < 0 {
			return fmt.Errorf("%s: %w", t.name, &unpinnedFailure{err: f.err})
		}
		return fmt.Errorf("%s: %w", t.name, &eventFailure{index: f.event, event: applied[f.event], err: f.err})
	}
	for i, e := range applied {
		w.event = i
		err := safeApply(ctx, t.apply, w, e)
		if w.failure != nil {
			// A statement queued by this event or an earlier one failed
			// (whatever apply made of the error).
			return failed(w.failure)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, &eventFailure{index: i, event: e, err: err})
		}
	}
	next := events[len(events)-1].Position
	if p != nil {
		if err := w.flush(ctx); err != nil {
			return failed(w.failure)
		}
		if err := park(ctx, tx, t.name, t.mark, events[len(events)-1], p.reason); err != nil {
			return err
		}
		if err := moveCheckpoint(ctx, tx, t.name, prev, next); err != nil {
			return err
		}
	} else {
		moved, err := w.send(ctx, checkpointCAS, t.name, string(next), string(prev))
		if err != nil {
			return failed(w.failure)
		}
		if moved == 0 {
			return errCheckpointMoved
		}
	}
	committed = true
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", t.name, err)
	}
	return nil
}

// oldRunner is set only by benchmarks that measure the runners as they
// were (one round trip per statement, synchronous commits) beside them.
var oldRunner = false

// unpinnedFailure is a failure of a batch of statements that cannot be
// pinned on one event (the batch could not be prepared or encoded, or the
// connection failed): the runners try the same events again with each
// statement sent on its own, which says whose it is.
type unpinnedFailure struct{ err error }

func (f *unpinnedFailure) Error() string { return "batch: " + f.err.Error() }
func (f *unpinnedFailure) Unwrap() error { return f.err }

// safeApply turns a panic of apply into an error of its event, so that it is
// counted and, if it keeps happening, parked like any other failure.
func safeApply(ctx context.Context, apply applyFunc, tx pgx.Tx, e es.Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return apply(ctx, tx, e)
}

// moveCheckpoint is the compare-and-set of a consumer's position, with a
// notification (delivered at commit) for WaitForProjections in every process.
func moveCheckpoint(ctx context.Context, tx pgx.Tx, name string, prev, next es.Position) error {
	rows, err := tx.Query(ctx, checkpointCAS, name, string(next), string(prev))
	if err != nil {
		return fmt.Errorf("%s: checkpoint: %w", name, err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: checkpoint: %w", name, err)
	}
	if n == 0 {
		return errCheckpointMoved
	}
	return nil
}

// checkpointCAS moves checkpoint $1 to $2 if it is at $3, and returns a row
// (the notification's) if it did.
const checkpointCAS = `
	WITH u AS (
		UPDATE consumer_checkpoints SET position = $2, updated_at = now(), last_error = NULL, failed_at = NULL
		WHERE name = $1 AND position = $3 RETURNING name)
	SELECT pg_notify('` + checkpointChannel + `', $2 || ' ' || $1) FROM u`
