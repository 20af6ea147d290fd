-- +goose Up
-- Secrets every instance must share, e.g. the key that signs widget tokens.
CREATE TABLE platform_secrets (
    name       text PRIMARY KEY,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE platform_secrets;
