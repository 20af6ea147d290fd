-- +goose Up
-- The first response to a POST with an Idempotency-Key, replayed to retries.
-- A row with a NULL status is a request still running: a concurrent duplicate
-- finds it and does not run.
CREATE TABLE idempotency_keys (
    organization_id uuid NOT NULL,
    key             text NOT NULL,
    request_hash    text NOT NULL,
    status          integer,
    headers         jsonb,
    body            bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
