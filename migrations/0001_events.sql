-- The transactional outbox, which is also the durable event log (kept for events.log_retention).
CREATE TABLE core_outbox (
    position        bigserial   PRIMARY KEY,
    id              uuid        NOT NULL UNIQUE,
    type            text        NOT NULL,
    version         integer     NOT NULL,
    publisher       text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL,
    occurred_at     timestamptz NOT NULL,
    correlation_id  text,
    actor           text,
    payload         jsonb       NOT NULL,
    published_at    timestamptz,
    stream_id       text
);
-- The relay reads only what is not yet published; the partial index stays tiny.
CREATE INDEX core_outbox_unpublished_idx ON core_outbox (position) WHERE published_at IS NULL;
-- Replay by time, and retention.
CREATE INDEX core_outbox_occurred_idx ON core_outbox (occurred_at);

-- Per-aggregate sequence numbers. Taking the next one locks the aggregate's row until commit,
-- so an aggregate's events commit, and are relayed, in sequence order.
CREATE TABLE core_event_sequences (
    aggregate_id    text        PRIMARY KEY,
    last            bigint      NOT NULL
);

-- One row per (consumer group, event) whose effects are committed: redeliveries are no-ops.
CREATE TABLE core_processed_events (
    consumer        text        NOT NULL,
    event_id        uuid        NOT NULL,
    processed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX core_processed_events_at_idx ON core_processed_events (processed_at);
