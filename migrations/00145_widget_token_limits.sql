-- +goose Up
-- Counters of widget tokens issued per minute, per client id ("client:…")
-- and per client address ("addr:…"), shared by every instance. Apart from
-- rate_limit_windows: the token endpoint needs no secret, so it must not
-- spend an organization's API budget.
CREATE TABLE widget_token_windows (
    bucket       text NOT NULL,
    window_start timestamptz NOT NULL,
    requests     integer NOT NULL,
    PRIMARY KEY (bucket, window_start)
);

-- +goose Down
DROP TABLE widget_token_windows;
