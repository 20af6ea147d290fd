// Package messaging runs Companin's event consumers: projections, which write
// read models, and workers, which act on events (replies, ingestion). Every
// consumer runs under a watermill message.Router (recoverer, retry with
// backoff, correlation id, metrics) fed by subscribers that read the event log
// from the consumer's checkpoint and hand over what they read (up to a page of
// the log) as one delivery, waiting for its ack. Message metadata names events
// by their stable type (event_type, event_id, stream, stream_version,
// position), never by Go types.
//
// Projections:
//   - A projection's read-model writes and its checkpoint commit in one
//     transaction, with a compare-and-set on the checkpoint: each event's
//     effect commits exactly once, whatever crashes, retries or concurrent
//     runners happen. The live runner applies a batch (what it has read, up to
//     a page of 100) per transaction, as Rebuild and CatchUp do (pages of 500,
//     the next page read while one is applied); when one event of a batch
//     fails, the events before it commit and the failing one is parked or
//     retried on its own.
//   - A batch costs a few round trips, not a few per event: the transaction a
//     projection's Handle gets queues what Exec sends in a pgx.Batch, sent
//     with the checkpoint's compare-and-set; Query and QueryRow send the queue
//     first. A statement's failure is the event's that queued it (when the
//     batch fails without saying which statement, the events are applied
//     again one statement at a time, which does). So a projection decides
//     inside its statements, never on the rows an Exec affected.
//   - A projection runs in one process at a time (a session advisory lock on a
//     dedicated connection); when the holder dies or stops, another process
//     takes over within the leadership interval, from the checkpoint.
//   - A projection never stops on one event, and never skips one silently.
//     Failures are classified: transient ones (connection lost, 40001
//     serialization failure, 40P01 deadlock, 57P01 admin shutdown, timeouts)
//     are retried (router retries, then redelivery with a growing delay up to
//     30s) for as long as they last, the error kept in
//     consumer_checkpoints.last_error. Deterministic ones (PostgreSQL data
//     exceptions, class 22, such as a NUL character or invalid UTF-8;
//     integrity violations, class 23; a stored event that does not decode; a
//     projection's own ErrCannotApply) park the event at once: a dead letter
//     (consumer, position, event id, stream, type, organization, reason) is
//     written in the same transaction that moves the checkpoint past it, the
//     projection marks what the event concerns (Marker: the knowledge source
//     failed with the reason, the user context or conversation degraded), and
//     the next event follows. Unclassified errors (a bug, a panic) are
//     retried and parked after WithParkAfter attempts (default 10). One
//     tenant's bad event never holds back another's. Rebuild and CatchUp park
//     the same events the same way.
//   - Transactions are short: idle_in_transaction_session_timeout is set per
//     transaction, and the log is read outside them.
//   - Consumer transactions commit without waiting for the WAL to reach the
//     disk (synchronous_commit off, per transaction; about 2 ms each here).
//     A database crash may lose the last few, each with its checkpoint, so
//     exactly-once holds: their events are applied again from the log, which
//     is written with synchronous commits, as is anything a worker does after
//     a job (a later synchronous commit also flushes the earlier ones). A
//     read model may only show, for the seconds after such a crash, less
//     than it showed before.
//
// Workers (AddWorker) are shared by all processes: a dispatcher led by one
// process turns matching events into rows of consumer_jobs in the same
// transaction as its checkpoint; every process claims jobs (FOR UPDATE SKIP
// LOCKED, with a lease) and runs the handler outside any transaction. Delivery
// is at-least-once: a crashed or hung handler's job is taken by another
// process when the lease runs out. Jobs of one stream run one at a time in log
// order; a job that fails WithMaxAttempts times is parked (status 'failed',
// last_error) and the stream's later jobs go on without it.
//
// Leases are short (WithLease, 6 s) and renewed every third of a lease while
// the handler runs, so the jobs of a process that dies are taken over within
// about one lease, and long handlers (LLM calls, big documents) keep theirs;
// WithJobTimeout (5 min) bounds a handler. A worker's OnParked hook records
// the failure of a parked job where it belongs (the ingestion worker fails
// the source), so nothing waits for ever on a job that was given up.
//
// Operations:
//   - Parked events: companin projections parked (one JSON object a line),
//     the companin_consumer_parked_events gauge and _parked_total counter,
//     and /readyz's parked_events. After fixing the cause (a new version, a
//     repaired row): companin projections retry ID, or --all. A retry clears
//     the mark, applies the event and then, again, the later events of its
//     stream that the projection already passed (projections apply replays
//     idempotently), in one transaction holding the projection's apply lock;
//     an event that still fails stays parked with its new reason.
//   - Retrying projection: SELECT name, position, last_error, failed_at FROM consumer_checkpoints WHERE last_error IS NOT NULL.
//   - Parked jobs: SELECT * FROM consumer_jobs WHERE status = 'failed'. To try
//     one again (after the stream's later jobs have run): UPDATE consumer_jobs
//     SET status = 'pending', attempts = 0, finished_at = NULL,
//     available_at = now() WHERE id = ...
//   - Metrics (WithRegisterer): companin_consumer_processed_total,
//     _failures_total, _lag_events, _lag_seconds, _leader, _jobs_parked_total
//     and companin_consumer_jobs{status} per consumer, plus watermill's
//     router metrics (companin_router_*).
//   - Rebuild (companin projections rebuild NAME) may run while servers run:
//     the live runner of that projection waits for it.
package messaging
