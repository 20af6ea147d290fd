-- +goose Up
-- Read model of widget configurations (projections/widget_configs.go).
-- Derived from the event log: a rebuild truncates and refills it. seq orders
-- lists and backs their cursors.
CREATE TABLE widget_configs (
    seq             bigserial   NOT NULL UNIQUE,
    id              uuid        PRIMARY KEY,
    organization_id text        NOT NULL,
    settings        jsonb       NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX widget_configs_org_seq ON widget_configs (organization_id, seq);

-- +goose Down
DROP TABLE widget_configs;
