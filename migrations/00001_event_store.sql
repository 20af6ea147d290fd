-- +goose Up
-- The event log. Placeholder; the event store adapter owns this file.
CREATE TABLE IF NOT EXISTS companin_schema_marker (id int PRIMARY KEY);

-- +goose Down
DROP TABLE IF EXISTS companin_schema_marker;
