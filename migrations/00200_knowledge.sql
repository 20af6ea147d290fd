-- Knowledge base read models (projections.Knowledge): the sources with their
-- ingestion status, and the chunks retrieval searches (full text per language
-- configuration, trigram similarity for typos and short queries).

-- +goose Up
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE knowledge_sources (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    kind            text NOT NULL,
    title           text NOT NULL,
    file_type       text NOT NULL DEFAULT '',
    file_name       text NOT NULL DEFAULT '',
    url             text NOT NULL DEFAULT '',
    fetched_url     text NOT NULL DEFAULT '',
    question        text NOT NULL DEFAULT '',
    answer          text NOT NULL DEFAULT '',
    tags            text[] NOT NULL DEFAULT '{}',
    source          text NOT NULL DEFAULT '',
    assistant_ids   uuid[] NOT NULL DEFAULT '{}',
    external_id     text NOT NULL DEFAULT '',
    status          text NOT NULL,
    error           text NOT NULL DEFAULT '',
    revision        int NOT NULL,
    language        text NOT NULL DEFAULT '',
    size_bytes      int NOT NULL DEFAULT 0,
    pages           int NOT NULL DEFAULT 0,
    chunk_count     int NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    ingested_at     timestamptz
);
CREATE INDEX knowledge_sources_org_created ON knowledge_sources (organization_id, created_at DESC, id DESC);

CREATE TABLE knowledge_chunks (
    id              uuid PRIMARY KEY,
    knowledge_id    uuid NOT NULL REFERENCES knowledge_sources (id) ON DELETE CASCADE,
    organization_id uuid NOT NULL,
    assistant_ids   uuid[] NOT NULL DEFAULT '{}',
    kind            text NOT NULL,          -- passage | qa
    ord             int NOT NULL,
    title           text NOT NULL,
    title_path      text[] NOT NULL DEFAULT '{}',
    page            int NOT NULL DEFAULT 0,
    start_offset    int NOT NULL DEFAULT 0,
    end_offset      int NOT NULL DEFAULT 0,
    body            text NOT NULL,
    question        text NOT NULL DEFAULT '',
    answer          text NOT NULL DEFAULT '',
    ts_config       regconfig NOT NULL,
    tsv             tsvector NOT NULL
);
CREATE INDEX knowledge_chunks_source ON knowledge_chunks (knowledge_id, ord);
CREATE INDEX knowledge_chunks_org ON knowledge_chunks (organization_id);
CREATE INDEX knowledge_chunks_tsv ON knowledge_chunks USING gin (tsv);
CREATE INDEX knowledge_chunks_trgm ON knowledge_chunks USING gin (body gin_trgm_ops);
CREATE INDEX knowledge_chunks_question_trgm ON knowledge_chunks USING gin (question gin_trgm_ops) WHERE kind = 'qa';

-- An OR of tsqueries, to search for any word of a question rather than all.
CREATE AGGREGATE knowledge_tsquery_or_agg (tsquery) (sfunc = tsquery_or, stype = tsquery);

-- knowledge_any_query is the query q in configuration cfg with its words
-- joined by OR: a customer's question rarely repeats every word of the passage
-- that answers it, so ranking (ts_rank_cd), not matching, does the choosing.
-- +goose StatementBegin
CREATE FUNCTION knowledge_any_query (cfg regconfig, q text) RETURNS tsquery
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(knowledge_tsquery_or_agg(plainto_tsquery('simple', l)), ''::tsquery)
    FROM unnest(tsvector_to_array(to_tsvector(cfg, q))) AS l
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION IF EXISTS knowledge_any_query (regconfig, text);
DROP AGGREGATE IF EXISTS knowledge_tsquery_or_agg (tsquery);
DROP TABLE IF EXISTS knowledge_chunks;
DROP TABLE IF EXISTS knowledge_sources;
