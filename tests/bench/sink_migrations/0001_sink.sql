-- Benchmark-only subscriber's effects. No unique key on event_id on purpose: an event handled
-- twice shows up as two rows (the benchmark checks count(*) = count(DISTINCT event_id)).
CREATE TABLE sink_effects (
    id          bigserial   PRIMARY KEY,
    event_id    uuid        NOT NULL,
    at          timestamptz NOT NULL
);
