package messaging

import (
	"context"
	"errors"
	"fmt"

	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNoDeadLetter is returned by RetryParked for an id that is not parked.
var ErrNoDeadLetter = errors.New("no such parked event")

// Parked lists the events consumers parked and that no retry has resolved
// yet, oldest first; consumer "" lists those of every consumer.
func Parked(ctx context.Context, pool *pgxpool.Pool, consumer string) ([]DeadLetter, error) {
	rows, err := pool.Query(ctx, `
		SELECT id, consumer, position, event_id::text, event_type, stream, stream_version, organization_id,
			reason, attempts, parked_at, retried_at
		FROM consumer_dead_letters
		WHERE resolved_at IS NULL AND ($1 = '' OR consumer = $1)
		ORDER BY id`, consumer)
	if err != nil {
		return nil, fmt.Errorf("parked events: %w", err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var d DeadLetter
		var version int64
		if err := rows.Scan(&d.ID, &d.Consumer, &d.Position, &d.EventID, &d.EventType, &d.Stream, &version,
			&d.OrganizationID, &d.Reason, &d.Attempts, &d.ParkedAt, &d.RetriedAt); err != nil {
			return nil, fmt.Errorf("parked events: %w", err)
		}
		d.StreamVersion = uint64(version)
		out = append(out, d)
	}
	return out, rows.Err()
}

// ParkedCounts returns, per consumer, how many parked events await a retry.
func ParkedCounts(ctx context.Context, pool *pgxpool.Pool) (map[string]int, error) {
	rows, err := pool.Query(ctx, `
		SELECT consumer, count(*) FROM consumer_dead_letters WHERE resolved_at IS NULL GROUP BY consumer`)
	if err != nil {
		return nil, fmt.Errorf("parked events: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			return nil, fmt.Errorf("parked events: %w", err)
		}
		out[name] = n
	}
	return out, rows.Err()
}

// Parked reports the runtime's parked events per consumer (for /readyz).
func (r *Runtime) Parked(ctx context.Context) (map[string]int, error) {
	return ParkedCounts(ctx, r.pool)
}

// RetryResult says what a retry did with one parked event.
type RetryResult struct {
	DeadLetter
	// Resolved: the event is applied now and no longer parked.
	Resolved bool `json:"resolved"`
	// Error is why it still cannot be applied (it stays parked).
	Error string `json:"error,omitempty"`
}

// RetryParked applies parked events again, after the cause was fixed (a new
// version of the projection, a repaired row): the one with id, or every
// open one when id is 0. Each runs in a transaction that holds the
// projection's apply lock exclusively (the live runner waits meanwhile):
// the read model's mark of the event is cleared, the event applied, and the
// later events of its stream that the projection has already passed are
// applied again after it (projections apply replays idempotently), so the
// entity ends as if the event had never been parked. An event that fails
// again stays parked with its new reason. Events of consumers that are not
// among ps (a worker's dispatcher) are left alone with an error.
func RetryParked(ctx context.Context, store es.Store, pool *pgxpool.Pool, ps []Projection, id int64) ([]RetryResult, error) {
	all, err := Parked(ctx, pool, "")
	if err != nil {
		return nil, err
	}
	var todo []DeadLetter
	for _, d := range all {
		if id == 0 || d.ID == id {
			todo = append(todo, d)
		}
	}
	if id != 0 && len(todo) == 0 {
		return nil, fmt.Errorf("retry %d: %w", id, ErrNoDeadLetter)
	}
	byName := map[string]Projection{}
	for _, p := range ps {
		byName[p.Name()] = p
	}
	var out []RetryResult
	for _, d := range todo {
		res := RetryResult{DeadLetter: d}
		p, ok := byName[d.Consumer]
		if !ok {
			res.Error = fmt.Sprintf("%s is not a projection of this program", d.Consumer)
			out = append(out, res)
			continue
		}
		cause, err := retryOne(ctx, store, pool, p, d)
		if err != nil {
			return out, err
		}
		res.Resolved, res.Error = cause == "", cause
		out = append(out, res)
	}
	return out, nil
}

// retryOne retries d with p. It returns why d still fails ("" once it is
// resolved), and an error when the retry itself could not run.
func retryOne(ctx context.Context, store es.Store, pool *pgxpool.Pool, p Projection, d DeadLetter) (string, error) {
	events, err := store.ReadStream(ctx, d.Stream, d.StreamVersion, 100000)
	if err != nil {
		return "", fmt.Errorf("retry %d: read %s: %w", d.ID, d.Stream, err)
	}
	if len(events) == 0 || events[0].ID.String() != d.EventID {
		return "", fmt.Errorf("retry %d: event %s is not at %s@%d", d.ID, d.EventID, d.Stream, d.StreamVersion)
	}
	t := targetOf(p)
	begin := pgx.TxOptions{BeginQuery: fmt.Sprintf(
		"BEGIN; SET LOCAL idle_in_transaction_session_timeout = %d; SELECT pg_advisory_xact_lock(%d, %d)",
		defaultTx.idleTimeout.Milliseconds(), lockApply, lockKey(p.Name()))}
	tx, err := pool.BeginTx(ctx, begin)
	if err != nil {
		return "", fmt.Errorf("retry %d: begin: %w", d.ID, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var checkpoint string
	if err := tx.QueryRow(ctx, `SELECT position FROM consumer_checkpoints WHERE name = $1`, p.Name()).Scan(&checkpoint); err != nil {
		return "", fmt.Errorf("retry %d: checkpoint: %w", d.ID, err)
	}
	open := map[string]bool{}
	rows, err := tx.Query(ctx, `SELECT event_id::text FROM consumer_dead_letters
		WHERE consumer = $1 AND stream = $2 AND resolved_at IS NULL`, p.Name(), d.Stream)
	if err != nil {
		return "", fmt.Errorf("retry %d: %w", d.ID, err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return "", fmt.Errorf("retry %d: %w", d.ID, err)
		}
		open[s] = true
	}
	rows.Close()
	var resolved []string
	for i, e := range events {
		if e.Position != "" && e.Position.After(es.Position(checkpoint)) {
			break // the live runner applies it in its turn
		}
		parkedHere := open[e.ID.String()]
		if i > 0 && parkedHere {
			continue // parked on its own: retried on its own
		}
		cause := applyInSavepoint(ctx, tx, t, e, parkedHere)
		if cause != nil {
			// The parked event fails again, or a later one of its stream
			// cannot be applied after it: leave everything as it was.
			_ = tx.Rollback(ctx)
			reason := reasonText(cause)
			_, err := pool.Exec(ctx, `UPDATE consumer_dead_letters SET retried_at = now(), attempts = attempts + 1, reason = $2
				WHERE id = $1`, d.ID, reason)
			if err != nil {
				return "", fmt.Errorf("retry %d: record failure: %w", d.ID, err)
			}
			return reason, nil
		}
		if parkedHere {
			resolved = append(resolved, e.ID.String())
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE consumer_dead_letters SET resolved_at = now(), retried_at = now()
		WHERE consumer = $1 AND event_id::text = ANY($2)`, p.Name(), resolved); err != nil {
		return "", fmt.Errorf("retry %d: resolve: %w", d.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", fmt.Errorf("retry %d: commit: %w", d.ID, err)
	}
	return "", nil
}

// applyInSavepoint applies e within tx, first clearing the read model's mark
// of it when it was parked; on failure nothing of it stays.
func applyInSavepoint(ctx context.Context, tx pgx.Tx, t target, e es.Event, clear bool) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	if clear && t.mark != nil {
		if err := t.mark.ClearParked(ctx, sp, e); err != nil {
			_ = sp.Rollback(ctx)
			return fmt.Errorf("clear the mark: %w", err)
		}
	}
	if err := safeApply(ctx, t.apply, sp, e); err != nil {
		_ = sp.Rollback(ctx)
		return err
	}
	return sp.Commit(ctx)
}
