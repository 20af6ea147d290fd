-- +goose Up
-- Revoked credentials stay listed (`companin org credentials list`) but no
-- longer authenticate.
ALTER TABLE organization_credentials ADD COLUMN revoked_at timestamptz;

-- +goose Down
ALTER TABLE organization_credentials DROP COLUMN revoked_at;
