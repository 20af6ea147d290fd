-- +goose Up
-- Where each consumer (projection or worker dispatcher) stands in the event log.
-- A projection updates its row in the same transaction as its read-model writes,
-- with a compare-and-set on position, so an event's effect commits exactly once.
-- The name is the consumer's identity: never rename one.
CREATE TABLE consumer_checkpoints (
    name       text PRIMARY KEY,
    position   text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- The last error of the consumer at its checkpoint (cleared by the next commit),
    -- so an operator sees why a projection is stuck.
    last_error text,
    failed_at  timestamptz
);

-- Work shared by all processes (competing consumers): one row per (worker, event),
-- inserted by the worker's single-leader dispatcher in the same transaction as its
-- checkpoint, claimed with FOR UPDATE SKIP LOCKED and a lease (claimed_until).
-- Only references to the event are kept (stream and version), never its data, so
-- crypto-shredding reaches the jobs too.
CREATE TABLE consumer_jobs (
    id             bigserial PRIMARY KEY,
    worker         text NOT NULL,
    event_id       uuid NOT NULL,
    event_type     text NOT NULL,
    stream         text NOT NULL,
    stream_version bigint NOT NULL,
    position       text NOT NULL,
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts       integer NOT NULL DEFAULT 0,
    available_at   timestamptz NOT NULL DEFAULT now(),
    claimed_by     text,
    claimed_until  timestamptz,
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    UNIQUE (worker, event_id)
);
CREATE INDEX consumer_jobs_pending ON consumer_jobs (worker, id) WHERE status = 'pending';
CREATE INDEX consumer_jobs_pending_stream ON consumer_jobs (worker, stream, id) WHERE status = 'pending';

-- +goose Down
DROP TABLE IF EXISTS consumer_jobs;
DROP TABLE IF EXISTS consumer_checkpoints;
