-- +goose Up
-- Erasure overwrites a subject's key with NULL (a tombstone) instead of
-- deleting the row and rewriting the table under an exclusive lock: see
-- adapters/eventstore/shred.PostgresKeys.Destroy. A tombstone also stops a
-- late write from creating a new key for an erased subject. scrubbed_at is
-- set once a table rewrite has removed the old row versions' bytes (Scrub).
ALTER TABLE subject_keys ALTER COLUMN secret DROP NOT NULL;
ALTER TABLE subject_keys ADD COLUMN destroyed_at timestamptz;
ALTER TABLE subject_keys ADD COLUMN scrubbed_at timestamptz;

-- +goose Down
DELETE FROM subject_keys WHERE secret IS NULL;
ALTER TABLE subject_keys DROP COLUMN scrubbed_at;
ALTER TABLE subject_keys DROP COLUMN destroyed_at;
ALTER TABLE subject_keys ALTER COLUMN secret SET NOT NULL;
