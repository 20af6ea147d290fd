-- The vocabulary of each organization's knowledge (projections.Knowledge):
-- search maps a misspelled or inflected query word to the words that occur
-- in the documents by trigram similarity on this small table, instead of
-- comparing the query with every chunk's text.

-- +goose Up
CREATE TABLE knowledge_terms (
    organization_id uuid NOT NULL,
    term            text NOT NULL,
    PRIMARY KEY (organization_id, term)
);
CREATE INDEX knowledge_terms_trgm ON knowledge_terms USING gin (term gin_trgm_ops);
-- Q&A pairs are compared with the query one by one: find them without a scan.
CREATE INDEX knowledge_chunks_qa ON knowledge_chunks (organization_id) WHERE kind = 'qa';
-- Searches go through the full-text index; an index on the organization
-- alone only tempted the planner into reading every chunk of it.
DROP INDEX IF EXISTS knowledge_chunks_org;

-- +goose Down
CREATE INDEX IF NOT EXISTS knowledge_chunks_org ON knowledge_chunks (organization_id);
DROP INDEX IF EXISTS knowledge_chunks_qa;
DROP TABLE IF EXISTS knowledge_terms;
