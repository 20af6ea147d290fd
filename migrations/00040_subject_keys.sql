-- +goose Up
-- One key per data subject, for crypto-shredding (adapters/eventstore/shred).
-- Erasing a subject deletes its row and rewrites the table (VACUUM FULL), so
-- that no copy of the key stays in the table's pages. secret holds the raw
-- key, or, when wrapped, the key sealed with the master key
-- (COMPANIN_MASTER_KEY), which lives outside the database.
CREATE TABLE subject_keys (
    subject    text PRIMARY KEY,
    secret     bytea NOT NULL,
    wrapped    boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE subject_keys;
