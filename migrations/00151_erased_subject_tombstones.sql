-- +goose Up
-- Contexts erased before keys were tombstoned (00041) lost their key row
-- altogether, which readers cannot tell from a subject that never had a key.
-- Tombstone them, so that fields written in the clear before they became
-- personal (conversation titles and metadata, message metadata) read as null
-- too (shred.Redact); a key left behind by an erasure that failed half-way
-- is destroyed here.
INSERT INTO subject_keys (subject, secret, wrapped, destroyed_at)
SELECT id::text, NULL, false, erased_at FROM user_contexts WHERE erased_at IS NOT NULL
ON CONFLICT (subject) DO UPDATE SET secret = NULL, wrapped = false, destroyed_at = excluded.destroyed_at
WHERE subject_keys.secret IS NOT NULL;

-- +goose Down
SELECT 1;
