-- +goose Up
-- One counter per organization per hour window, shared by every instance.
CREATE TABLE rate_limit_windows (
    organization_id uuid NOT NULL,
    window_start    timestamptz NOT NULL,
    requests        integer NOT NULL,
    PRIMARY KEY (organization_id, window_start)
);

-- +goose Down
DROP TABLE rate_limit_windows;
