package messaging

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// batchTx is the transaction a consumer's apply function writes through when
// the runners apply a batch of events: Exec queues the statement in a
// pgx.Batch instead of sending it, and the queue goes to the database in one
// round trip, with the checkpoint's compare-and-set last, when the batch
// ends. Everything that needs an answer from the database first sends the
// queue (Query, QueryRow, CopyFrom, SendBatch, Begin, Prepare, Conn), so a
// projection that reads sees its own writes and those of the events before.
//
// What this asks of apply functions (Projection.Handle says it too): Exec
// returns an empty CommandTag (a decision that needs the rows affected goes in
// the statement: a CTE, or Query), a statement's error surfaces later and is
// counted against the event that queued it, and arguments are encoded when
// the queue is sent, so they must not change after Exec.
//
// In synchronous mode (sync) Exec is sent at once, as on a plain pgx.Tx: the
// runners fall back to it for an attempt whose batched failure they cannot
// pin on one event.
type batchTx struct {
	pgx.Tx
	sync   bool
	batch  *pgx.Batch
	owners []int // the event (index in the batch of events) of each queued statement
	event  int   // the event being applied

	// failure is the first statement that failed, once one has: the
	// transaction is aborted and every later call fails with it.
	failure *batchFailure
}

// batchFailure is a statement of a sent batch that failed.
type batchFailure struct {
	event int // the event that queued it; -1 when the failure cannot be pinned on one
	err   error
}

func newBatchTx(tx pgx.Tx, sync bool) *batchTx {
	return &batchTx{Tx: tx, sync: sync, batch: &pgx.Batch{}}
}

// Exec queues sql; it is sent with the rest of the batch. Without arguments
// it is sent at once (it may hold several statements, which a batch cannot).
func (b *batchTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if b.failure != nil {
		return pgconn.CommandTag{}, b.failure.err
	}
	if b.sync || len(args) == 0 {
		if err := b.flush(ctx); err != nil {
			return pgconn.CommandTag{}, err
		}
		tag, err := b.Tx.Exec(ctx, sql, args...)
		if err != nil {
			// The event's, even if apply makes nothing of it: the
			// transaction is aborted, and the next event must not take
			// the blame.
			b.failure = &batchFailure{event: b.event, err: err}
		}
		return tag, err
	}
	b.batch.Queue(sql, args...)
	b.owners = append(b.owners, b.event)
	return pgconn.CommandTag{}, nil
}

// flush sends the queued statements, if any, and waits for their results.
func (b *batchTx) flush(ctx context.Context) error {
	_, err := b.send(ctx, "")
	return err
}

// send sends the queued statements and then, if final is not empty, final
// (with args), whose rows it counts: one round trip for all.
func (b *batchTx) send(ctx context.Context, final string, args ...any) (int, error) {
	if b.failure != nil {
		return 0, b.failure.err
	}
	if len(b.owners) == 0 && final == "" {
		return 0, nil
	}
	batch, owners := b.batch, b.owners
	if final != "" {
		batch.Queue(final, args...)
	}
	b.batch, b.owners = &pgx.Batch{}, nil
	br := b.Tx.SendBatch(ctx, batch)
	for _, owner := range owners {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return 0, b.fail(owner, err)
		}
	}
	n := 0
	if final != "" {
		rows, err := br.Query()
		if err == nil {
			for rows.Next() {
				n++
			}
			rows.Close()
			err = rows.Err()
		}
		if err != nil {
			_ = br.Close()
			return 0, b.fail(-2, err)
		}
	}
	if err := br.Close(); err != nil {
		return 0, b.fail(-1, err)
	}
	return n, nil
}

// fail records the failure of a statement queued by event owner (-2: the
// final statement of send, which is not an event's).
func (b *batchTx) fail(owner int, err error) error {
	var pgErr *pgconn.PgError
	var pre pgx.ErrPreprocessingBatch
	if owner >= 0 && (!errors.As(err, &pgErr) || errors.As(err, &pre)) {
		// Not the server's answer to that statement (the batch could not be
		// prepared or encoded, or the connection failed): the statement at
		// fault is not known.
		owner = -1
	}
	if owner == -2 {
		owner = -1
	}
	b.failure = &batchFailure{event: owner, err: err}
	return err
}

// Query sends the queue first, then runs sql.
func (b *batchTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.Tx.Query(ctx, sql, args...)
}

// QueryRow sends the queue first, then runs sql.
func (b *batchTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := b.flush(ctx); err != nil {
		return errRow{err}
	}
	return b.Tx.QueryRow(ctx, sql, args...)
}

// Begin sends the queue first; the savepoint it returns is a plain pgx.Tx.
func (b *batchTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.Tx.Begin(ctx)
}

// CopyFrom sends the queue first.
func (b *batchTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if err := b.flush(ctx); err != nil {
		return 0, err
	}
	return b.Tx.CopyFrom(ctx, table, columns, src)
}

// SendBatch sends the queue first.
func (b *batchTx) SendBatch(ctx context.Context, batch *pgx.Batch) pgx.BatchResults {
	if err := b.flush(ctx); err != nil {
		return pgx.FailedBatchResults(batch, err)
	}
	return b.Tx.SendBatch(ctx, batch)
}

// Prepare sends the queue first.
func (b *batchTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.Tx.Prepare(ctx, name, sql)
}

// LargeObjects sends the queue first (its failure is reported at the end of the event).
func (b *batchTx) LargeObjects() pgx.LargeObjects {
	_ = b.flush(context.Background())
	return b.Tx.LargeObjects()
}

// Conn sends the queue first (its failure is reported at the end of the event).
func (b *batchTx) Conn() *pgx.Conn {
	_ = b.flush(context.Background())
	return b.Tx.Conn()
}

// Commit and Rollback belong to the runner: the transaction holds other
// events and the checkpoint.
func (b *batchTx) Commit(context.Context) error {
	return fmt.Errorf("messaging: a consumer must not end its transaction")
}

// Rollback: see Commit.
func (b *batchTx) Rollback(context.Context) error {
	return fmt.Errorf("messaging: a consumer must not end its transaction")
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
