-- +goose Up
-- Parked jobs are few and looked up by operators and the jobs gauge.
CREATE INDEX consumer_jobs_failed ON consumer_jobs (worker, id) WHERE status = 'failed';

-- +goose Down
DROP INDEX IF EXISTS consumer_jobs_failed;
