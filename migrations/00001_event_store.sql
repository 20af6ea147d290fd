-- +goose Up
-- The event log: the one source of truth (adapters/eventstore/postgres).
--
-- Global order is (epoch, transaction_id, global_position). A bigserial alone
-- would let a reader see position 11 before a slower transaction commits 10
-- and skip 10 for ever; readers therefore only read rows whose transaction id
-- lies below the oldest transaction still running
-- (pg_snapshot_xmin(pg_current_snapshot())), in transaction-id order.
-- The epoch keeps that order after a logical dump and restore, where new
-- transaction ids start below the restored ones: the store raises it at start
-- when it finds stored transaction ids the server has not handed out yet.

CREATE TABLE event_store_epoch (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch     integer NOT NULL DEFAULT 0 CHECK (epoch >= 0)
);
INSERT INTO event_store_epoch DEFAULT VALUES;

CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    epoch           integer NOT NULL,
    transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid NOT NULL,
    stream          text NOT NULL CHECK (stream <> ''),
    version         bigint NOT NULL CHECK (version > 0),
    organization_id text NOT NULL DEFAULT '',
    type            text NOT NULL CHECK (type <> ''),
    schema_version  integer NOT NULL DEFAULT 1,
    data            jsonb,
    metadata        jsonb NOT NULL DEFAULT '{}',
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (epoch, transaction_id, global_position),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream, version)
);

-- ReadAll filtered by organization walks this index in log order.
CREATE INDEX events_organization_position_idx
    ON events (organization_id, epoch, transaction_id, global_position);

-- event_store_append is one append: one round trip, one transaction when
-- called on its own. It takes the stream's advisory lock before anything
-- gives the transaction an id, so that one stream's transaction ids rise in
-- its commit order. Expected kinds: 0 any, 1 no stream, 2 stream exists, 3 exact.
-- Status: 'ok' (appended or empty batch accepted), 'stored' (some ids are
-- already stored: the caller decides between a retry and a conflict),
-- 'wrong_version' (version holds the stream's current version).
-- p_notify sends the NOTIFY inside the transaction. The Go adapter passes
-- false and notifies after the commit: PostgreSQL serialises the commits of
-- notifying transactions, which would cost most of the write throughput.
-- +goose StatementBegin
CREATE FUNCTION event_store_append(
    p_stream text, p_expected_kind integer, p_expected_version bigint,
    p_ids uuid[], p_types text[], p_schema_versions integer[],
    p_data text[], p_metadata text[], p_organizations text[], p_notify boolean
) RETURNS TABLE (status text, version bigint, epoch integer, transaction_id text, global_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_current  bigint;
    v_epoch    integer;
    v_stored   boolean;
    v_accepted boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(p_stream));
    -- One statement (one snapshot, taken after the lock) for every check.
    SELECT coalesce(cardinality(p_ids), 0) > 0 AND EXISTS (SELECT 1 FROM events e WHERE e.event_id = ANY (p_ids)),
           (SELECT coalesce(max(e.version), 0) FROM events e WHERE e.stream = p_stream),
           (SELECT s.epoch FROM event_store_epoch s)
      INTO v_stored, v_current, v_epoch;
    IF v_stored THEN
        RETURN QUERY SELECT 'stored'::text, 0::bigint, 0, ''::text, 0::bigint;
        RETURN;
    END IF;
    v_accepted := CASE p_expected_kind
        WHEN 1 THEN v_current = 0
        WHEN 2 THEN v_current > 0
        WHEN 3 THEN v_current = p_expected_version
        ELSE true END;
    IF NOT v_accepted THEN
        RETURN QUERY SELECT 'wrong_version'::text, v_current, 0, ''::text, 0::bigint;
        RETURN;
    END IF;
    IF coalesce(cardinality(p_ids), 0) = 0 THEN
        RETURN QUERY
            SELECT 'ok'::text, v_current, coalesce(max(e.epoch), 0), coalesce(max(e.transaction_id::text), ''), coalesce(max(e.global_position), 0)
            FROM events e WHERE e.stream = p_stream AND e.version = v_current;
        RETURN;
    END IF;
    -- Rows take their global positions in version order; the last one is
    -- this session's last value of the sequence.
    INSERT INTO events (epoch, event_id, stream, version, organization_id, type, schema_version, data, metadata)
    SELECT v_epoch, n.id, p_stream, v_current + n.ord, n.org, n.typ, n.sv, n.dat::jsonb, n.meta::jsonb
    FROM unnest(p_ids, p_types, p_schema_versions, p_data, p_metadata, p_organizations)
         WITH ORDINALITY AS n(id, typ, sv, dat, meta, org, ord)
    ORDER BY n.ord;
    RETURN QUERY SELECT 'ok'::text, v_current + cardinality(p_ids), v_epoch, pg_current_xact_id()::text,
        currval('events_global_position_seq');
    IF p_notify THEN
        PERFORM pg_notify('companin_events', '');
    END IF;
END
$fn$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION IF EXISTS event_store_append(text, integer, bigint, uuid[], text[], integer[], text[], text[], text[], boolean);
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS event_store_epoch;
