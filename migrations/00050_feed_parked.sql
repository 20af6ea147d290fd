-- +goose Up
-- Events the NATS feed could not publish (an organization id or type that is
-- not a valid subject token, data that is not JSON): one row per feed and
-- event, written in the same transaction as the feed's checkpoint, so the feed
-- moves on and an operator sees what is missing from the stream and why.
CREATE TABLE feed_parked (
    feed       text NOT NULL,
    event_id   uuid NOT NULL,
    position   text NOT NULL,
    stream     text NOT NULL,
    event_type text NOT NULL,
    reason     text NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feed, event_id)
);

-- +goose Down
DROP TABLE IF EXISTS feed_parked;
