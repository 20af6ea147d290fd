-- Knowledge search under load (issue 11).
--
-- Typo correction looks up the words of one organization's vocabulary by
-- trigram similarity. With the trigram index on the term alone the planner
-- read every word of the organization through the primary key and compared
-- each (22 ms at 20,000 words, per query word); one index on both columns
-- (btree_gin for the uuid) finds the similar words of that organization
-- directly (0.7 ms).
--
-- GIN indexes keep new entries in a pending list until a vacuum or until the
-- list reaches gin_pending_list_limit (4 MB by default), and every search
-- reads the whole list: after a knowledge base was loaded each lookup of
-- one word in knowledge_chunks_tsv took 1.3 ms instead of 0.01 ms, and a
-- search makes several. A small list (64 kB) keeps most of the batching
-- that makes ingestion fast and bounds what a search pays for it.

-- +goose Up
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX knowledge_terms_org_trgm ON knowledge_terms USING gin (organization_id, term gin_trgm_ops)
    WITH (gin_pending_list_limit = 64);
DROP INDEX IF EXISTS knowledge_terms_trgm;
ALTER INDEX knowledge_chunks_tsv SET (gin_pending_list_limit = 64);
ALTER INDEX knowledge_chunks_question_trgm SET (gin_pending_list_limit = 64);

-- +goose Down
ALTER INDEX knowledge_chunks_question_trgm RESET (gin_pending_list_limit);
ALTER INDEX knowledge_chunks_tsv RESET (gin_pending_list_limit);
CREATE INDEX IF NOT EXISTS knowledge_terms_trgm ON knowledge_terms USING gin (term gin_trgm_ops);
DROP INDEX IF EXISTS knowledge_terms_org_trgm;
