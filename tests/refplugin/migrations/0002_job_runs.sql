CREATE TABLE reference_job_runs (
    id      bigserial   PRIMARY KEY,
    ran_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    notes   bigint      NOT NULL
);
