-- +goose Up
-- Events a projection (or a worker's dispatcher) could not apply and parked
-- instead of stopping on them: written in the same transaction that moves the
-- consumer's checkpoint past the event. Only references to the event are kept
-- (stream and version), never its data, so crypto-shredding reaches them too.
-- `companin projections parked` lists them, `companin projections retry`
-- applies them again once the cause is fixed (resolved_at is then set).
CREATE TABLE consumer_dead_letters (
    id              bigserial PRIMARY KEY,
    consumer        text        NOT NULL,
    position        text        NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    stream          text        NOT NULL,
    stream_version  bigint      NOT NULL,
    organization_id text        NOT NULL DEFAULT '',
    reason          text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 1,
    parked_at       timestamptz NOT NULL DEFAULT now(),
    retried_at      timestamptz,
    resolved_at     timestamptz,
    UNIQUE (consumer, event_id)
);
CREATE INDEX consumer_dead_letters_open ON consumer_dead_letters (consumer, id) WHERE resolved_at IS NULL;

-- Entities of a read model that a parked event concerns (projections that
-- implement messaging.Marker and have no status column of their own: a user
-- context, a session or conversation): queries can show them as degraded.
-- Cleared when a retry applies the event; emptied with the projection's
-- dead letters by a rebuild, which marks again what it parks again.
CREATE TABLE degraded_entities (
    consumer        text        NOT NULL,
    entity_id       uuid        NOT NULL,
    kind            text        NOT NULL,
    organization_id text        NOT NULL DEFAULT '',
    event_id        uuid        NOT NULL,
    reason          text        NOT NULL,
    marked_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, entity_id)
);

-- +goose Down
DROP TABLE IF EXISTS degraded_entities;
DROP TABLE IF EXISTS consumer_dead_letters;
