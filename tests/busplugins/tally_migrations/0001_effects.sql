-- No unique key on event_id on purpose: a double effect must be visible.
CREATE TABLE tally_effects (
    id          bigserial   PRIMARY KEY,
    event_id    uuid        NOT NULL,
    account_id  uuid        NOT NULL,
    sequence    bigint      NOT NULL,
    amount      bigint      NOT NULL,
    handled_by  text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE tally_poison (amount bigint PRIMARY KEY);
CREATE TABLE tally_delay (seconds float NOT NULL);
ALTER TABLE tally_delay ADD COLUMN jitter boolean NOT NULL DEFAULT false;
-- A "latest state" projection: an event older than what is held (by sequence) is ignored.
CREATE TABLE tally_latest (
    account_id  uuid    PRIMARY KEY,
    sequence    bigint  NOT NULL,
    amount      bigint  NOT NULL
);
