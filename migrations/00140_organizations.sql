-- +goose Up
-- Read model of the organizations projection: who may call the API.
CREATE TABLE organizations (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    allowed_origins text[] NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL
);

CREATE TABLE organization_credentials (
    client_id       text PRIMARY KEY,
    organization_id uuid NOT NULL,
    secret_hash     text NOT NULL,
    issued_at       timestamptz NOT NULL
);
CREATE INDEX organization_credentials_org ON organization_credentials (organization_id);

-- +goose Down
DROP TABLE organization_credentials;
DROP TABLE organizations;
