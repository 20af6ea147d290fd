-- +goose Up
-- event_store_append, cheaper: same arguments, same results, same contract
-- (see 00001). Successful appends, nearly all of them, no longer look their
-- event ids up before inserting: the unique index on event_id looks them up
-- anyway, and a retry of a stored batch fails the INSERT with
-- events_event_id_key, on which the Go adapter reads the stored events and
-- replays or refuses, as it does for 'stored'. The ids are looked up only
-- when the expected version does not hold, which is where a retry lands once
-- its stream has moved on. A batch of one event is inserted with VALUES (no
-- unnest, no sort), and the function returns one row through OUT parameters
-- instead of a set (no tuplestore).
DROP FUNCTION event_store_append(text, integer, bigint, uuid[], text[], integer[], text[], text[], text[], boolean);
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION event_store_append(
    p_stream text, p_expected_kind integer, p_expected_version bigint,
    p_ids uuid[], p_types text[], p_schema_versions integer[],
    p_data text[], p_metadata text[], p_organizations text[], p_notify boolean,
    OUT status text, OUT version bigint, OUT epoch integer, OUT transaction_id text, OUT global_position bigint
)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_current  bigint;
    v_n        integer := coalesce(cardinality(p_ids), 0);
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(p_stream));
    SELECT coalesce((SELECT max(e.version) FROM events e WHERE e.stream = p_stream), 0),
           (SELECT s.epoch FROM event_store_epoch s)
      INTO v_current, epoch;
    IF NOT (CASE p_expected_kind
        WHEN 1 THEN v_current = 0
        WHEN 2 THEN v_current > 0
        WHEN 3 THEN v_current = p_expected_version
        ELSE true END) THEN
        IF v_n > 0 AND EXISTS (SELECT 1 FROM events e WHERE e.event_id = ANY (p_ids)) THEN
            status := 'stored'; version := 0;
        ELSE
            status := 'wrong_version'; version := v_current;
        END IF;
        epoch := 0; transaction_id := ''; global_position := 0;
        RETURN;
    END IF;
    status := 'ok'; version := v_current + v_n;
    IF v_n = 0 THEN
        SELECT coalesce(max(e.epoch), 0), coalesce(max(e.transaction_id::text), ''), coalesce(max(e.global_position), 0)
          INTO epoch, transaction_id, global_position
          FROM events e WHERE e.stream = p_stream AND e.version = v_current;
        RETURN;
    END IF;
    IF v_n = 1 THEN
        INSERT INTO events AS e (epoch, event_id, stream, version, organization_id, type, schema_version, data, metadata)
        VALUES (epoch, p_ids[1], p_stream, v_current + 1, p_organizations[1], p_types[1], p_schema_versions[1], p_data[1]::jsonb, p_metadata[1]::jsonb)
        RETURNING e.global_position, e.transaction_id::text INTO global_position, transaction_id;
    ELSE
        INSERT INTO events (epoch, event_id, stream, version, organization_id, type, schema_version, data, metadata)
        SELECT epoch, n.id, p_stream, v_current + n.ord, n.org, n.typ, n.sv, n.dat::jsonb, n.meta::jsonb
        FROM unnest(p_ids, p_types, p_schema_versions, p_data, p_metadata, p_organizations)
             WITH ORDINALITY AS n(id, typ, sv, dat, meta, org, ord)
        ORDER BY n.ord;
        global_position := currval('events_global_position_seq');
        transaction_id := pg_current_xact_id()::text;
    END IF;
    IF p_notify THEN
        PERFORM pg_notify('companin_events', '');
    END IF;
END
$fn$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION event_store_append(text, integer, bigint, uuid[], text[], integer[], text[], text[], text[], boolean);
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
