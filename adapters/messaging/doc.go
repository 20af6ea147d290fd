// Package messaging runs Companin's event consumers: projections, which write
// read models, and workers, which act on events (replies, ingestion). Every
// consumer runs under a watermill message.Router (recoverer, retry with
// backoff, correlation id, metrics) fed by subscribers that read the event log
// from the consumer's checkpoint, one event at a time, waiting for its ack.
// Message metadata names events by their stable type (event_type, event_id,
// stream, stream_version, position, correlation_id), never by Go types.
//
// Projections:
//   - A projection's read-model writes and its checkpoint commit in one
//     transaction, with a compare-and-set on the checkpoint: each event's
//     effect commits exactly once, whatever crashes, retries or concurrent
//     runners happen.
//   - A projection runs in one process at a time (a session advisory lock on a
//     dedicated connection); when the holder dies or stops, another process
//     takes over within the leadership interval, from the checkpoint.
//   - A projection never skips an event: a failing event is retried (router
//     retries, then redelivery with a growing delay up to 30s) until it
//     succeeds. The projection stops there and its error is kept in
//     consumer_checkpoints.last_error, because a read model built from a log
//     with holes is wrong in ways nobody notices. Fix the code and it resumes.
//   - Transactions are short: idle_in_transaction_session_timeout is set per
//     transaction, and the log is read outside them.
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
// Operations:
//   - Stuck projection: SELECT name, position, last_error, failed_at FROM consumer_checkpoints WHERE last_error IS NOT NULL.
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
