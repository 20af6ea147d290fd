-- +goose Up
-- Idempotency keys belong to the caller that sent them (adapters/http/
-- idempotency.go): one API credential, or one widget token (one visitor),
-- never the whole organization. subject names the user context whose data
-- the stored response holds, so that erasing that person deletes it.
-- Rows stored before this migration were shared by the organization and may
-- hold erased persons' data: they are dropped (keys live 24 hours; a retry
-- across the upgrade runs again).
DELETE FROM idempotency_keys;
ALTER TABLE idempotency_keys ADD COLUMN principal text NOT NULL;
ALTER TABLE idempotency_keys ADD COLUMN subject text;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (organization_id, principal, key);
CREATE INDEX idempotency_keys_subject ON idempotency_keys (organization_id, subject) WHERE subject IS NOT NULL;

-- +goose Down
DELETE FROM idempotency_keys;
DROP INDEX idempotency_keys_subject;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys DROP COLUMN subject;
ALTER TABLE idempotency_keys DROP COLUMN principal;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (organization_id, key);
