-- The payments plugin's schema: intents (one provider order each), the provider events that
-- moved them, refunds, and the nightly settlement report. Money is integer minor units
-- (paise) plus an ISO currency everywhere; there is no float or numeric money column.
-- Once applied anywhere this file never changes: add 0002_<what>.sql (and its .down.sql).

-- One attempt to collect a booking's amount through one provider. An intent belongs to one
-- provider for its whole life, so one intent is never charged by two providers; a buyer who
-- retries after a failure gets a new intent. `refunded_minor` counts refunds pending and
-- processed, so the CHECK makes "refunds never exceed what was captured" a database rule.
CREATE TABLE payments_intents (
    id                   uuid        PRIMARY KEY,
    booking_id           uuid        NOT NULL,
    buyer_id             uuid        NOT NULL,
    provider             text        NOT NULL,
    provider_order_id    text,
    provider_payment_id  text,
    amount_minor         bigint      NOT NULL CHECK (amount_minor > 0),
    currency             char(3)     NOT NULL,
    -- What the app's checkout needs from the provider (order id, public key): never a secret.
    client               jsonb,
    status               text        NOT NULL DEFAULT 'created'
                         CHECK (status IN ('created', 'attempted', 'authorized', 'captured',
                                           'failed')),
    captured_minor       bigint      NOT NULL DEFAULT 0 CHECK (captured_minor >= 0),
    refunded_minor       bigint      NOT NULL DEFAULT 0
                         CHECK (refunded_minor >= 0 AND refunded_minor <= captured_minor),
    -- What the booking said when the payment was captured: confirmed, or why not
    -- (unit-taken, already-paid, booking-closed: the payment was refunded in full).
    booking_outcome      text,
    failure_reason       text,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE UNIQUE INDEX payments_intents_order_key ON payments_intents (provider, provider_order_id);
CREATE INDEX payments_intents_payment_idx ON payments_intents (provider, provider_payment_id);
CREATE INDEX payments_intents_booking_idx ON payments_intents (booking_id, created_at);
CREATE INDEX payments_intents_created_idx ON payments_intents (created_at DESC, id DESC);
-- The reconciliation poll reads intents still open after a while.
CREATE INDEX payments_intents_open_idx ON payments_intents (updated_at)
    WHERE status IN ('created', 'attempted', 'authorized');

-- Every provider event we accepted (a verified webhook, or a poll that found news), kept as
-- received. (provider, event_id) is unique: a duplicate delivery is stored once and has one
-- effect, however many copies arrive at once.
CREATE TABLE payments_events (
    id                 uuid        PRIMARY KEY,
    provider           text        NOT NULL,
    event_id           text        NOT NULL,
    kind               text        NOT NULL,
    raw_type           text        NOT NULL,
    order_id           text,
    payment_id         text,
    refund_id          text,
    amount_minor       bigint      CHECK (amount_minor IS NULL OR amount_minor >= 0),
    currency           char(3),
    body               bytea       NOT NULL,
    received_at        timestamptz NOT NULL,
    processed_at       timestamptz,
    -- What processing did: "captured", "ignored: already captured", ...
    outcome            text,
    intent_id          uuid,
    CONSTRAINT payments_events_unique UNIQUE (provider, event_id)
);
CREATE INDEX payments_events_intent_idx ON payments_events (intent_id, received_at);
CREATE INDEX payments_events_received_idx ON payments_events (received_at DESC, id DESC);

-- A refund of one intent. `idempotency_key` makes each reason for a refund happen once
-- (a cancellation, a late payment the booking refused, an admin's request key).
CREATE TABLE payments_refunds (
    id                  uuid        PRIMARY KEY,
    intent_id           uuid        NOT NULL REFERENCES payments_intents (id),
    booking_id          uuid        NOT NULL,
    provider            text        NOT NULL,
    provider_refund_id  text,
    amount_minor        bigint      NOT NULL CHECK (amount_minor > 0),
    currency            char(3)     NOT NULL,
    status              text        NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'processed', 'failed')),
    reason              text        NOT NULL,
    idempotency_key     text        NOT NULL UNIQUE,
    requested_by        text        NOT NULL,
    failure_reason      text,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX payments_refunds_intent_idx ON payments_refunds (intent_id, created_at);
CREATE INDEX payments_refunds_created_idx ON payments_refunds (created_at DESC, id DESC);
CREATE INDEX payments_refunds_provider_idx ON payments_refunds (provider, provider_refund_id);

-- The nightly reconciliation: each line of a provider's settlement report for a day, and
-- what it matched (exactly one payment or refund), or why it did not.
CREATE TABLE payments_settlement_lines (
    provider       text        NOT NULL,
    settled_on     date        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('payment', 'refund')),
    provider_id    text        NOT NULL,
    amount_minor   bigint      NOT NULL,
    fee_minor      bigint      NOT NULL,
    currency       char(3)     NOT NULL,
    intent_id      uuid,
    refund_id      uuid,
    -- matched | unknown (no payment or refund of ours) | amount-mismatch | not-captured
    status         text        NOT NULL,
    detail         text        NOT NULL DEFAULT '',
    checked_at     timestamptz NOT NULL,
    PRIMARY KEY (provider, kind, provider_id)
);
CREATE INDEX payments_settlement_day_idx ON payments_settlement_lines (settled_on DESC, status);
