-- The bookings plugin's first schema: bookings (holds through to refunds), their history, the
-- booking terms of projects, and the payments and refunds recorded against bookings. Money is
-- bigint minor units, rates integer basis points: no float or numeric money column.
-- Once applied anywhere this file never changes: add 0002_<what>.sql (and its .down.sql).

CREATE TABLE bookings_bookings (
    id                      uuid        PRIMARY KEY,
    unit_id                 uuid        NOT NULL,
    project_id              uuid        NOT NULL,
    buyer_id                uuid        NOT NULL,
    status                  text        NOT NULL CONSTRAINT bookings_bookings_status CHECK (
        status IN ('held', 'payment_pending', 'paid', 'confirmed', 'expired', 'released',
                   'cancelled', 'refunded')),
    price_minor             bigint      NOT NULL CHECK (price_minor > 0),
    currency                text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount_due_minor        bigint      NOT NULL CHECK (amount_due_minor >= 0),
    rera_cap_minor          bigint      NOT NULL CHECK (rera_cap_minor >= 0),
    captured_minor          bigint      NOT NULL DEFAULT 0 CHECK (captured_minor >= 0),
    refunded_minor          bigint      NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
    fee_minor               bigint      CHECK (fee_minor >= 0),
    refund_minor            bigint      CHECK (refund_minor >= 0 AND refund_minor <= captured_minor),
    -- The cancellation policy of the project's terms when the hold was taken.
    free_cancel_hours       integer     NOT NULL CHECK (free_cancel_hours >= 0),
    fee_fixed_minor         bigint      NOT NULL CHECK (fee_fixed_minor >= 0),
    fee_bps                 integer     NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
    -- The hold's clock: the settings when it was taken.
    held_at                 timestamptz NOT NULL,
    expires_at              timestamptz NOT NULL,
    ceiling_at              timestamptz NOT NULL,
    extensions_used         integer     NOT NULL DEFAULT 0,
    max_extensions          integer     NOT NULL CHECK (max_extensions >= 0),
    confirmed_at            timestamptz,
    cancelled_at            timestamptz,
    updated_at              timestamptz NOT NULL,
    CHECK (expires_at <= ceiling_at),
    CHECK (extensions_used BETWEEN 0 AND max_extensions),
    CHECK (status NOT IN ('confirmed', 'cancelled', 'refunded') OR confirmed_at IS NOT NULL),
    CHECK (status NOT IN ('cancelled', 'refunded')
           OR (cancelled_at IS NOT NULL AND fee_minor IS NOT NULL AND refund_minor IS NOT NULL))
);
-- It can never oversell: at most one live booking per unit, whatever the code does.
CREATE UNIQUE INDEX bookings_bookings_live_unit ON bookings_bookings (unit_id)
    WHERE status IN ('held', 'payment_pending', 'paid', 'confirmed');
-- A buyer's bookings, newest first (GET /bookings), and the count of their active holds.
CREATE INDEX bookings_bookings_buyer_idx ON bookings_bookings (buyer_id, held_at DESC, id DESC);
-- The console's list, newest first, of all bookings or of one status.
CREATE INDEX bookings_bookings_held_idx ON bookings_bookings (held_at DESC, id DESC);
CREATE INDEX bookings_bookings_status_idx ON bookings_bookings (status, held_at DESC, id DESC);
-- The sweeper (stale holds) and the console's "about to expire" page.
CREATE INDEX bookings_bookings_expiring_idx ON bookings_bookings (expires_at, id)
    WHERE status IN ('held', 'payment_pending');

-- Every transition of a booking, oldest first. ``reason`` is a fixed phrase or a reason code;
-- ``note`` is what staff or the buyer typed (never in an event; erased with the buyer).
CREATE TABLE bookings_history (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id   uuid        NOT NULL REFERENCES bookings_bookings (id) ON DELETE CASCADE,
    from_status  text        CHECK (from_status IN ('held', 'payment_pending', 'paid',
                     'confirmed', 'expired', 'released', 'cancelled', 'refunded')),
    to_status    text        NOT NULL CHECK (to_status IN ('held', 'payment_pending', 'paid',
                     'confirmed', 'expired', 'released', 'cancelled', 'refunded')),
    actor        text        NOT NULL,
    reason       text,
    note         text,
    at           timestamptz NOT NULL
);
CREATE INDEX bookings_history_booking_idx ON bookings_history (booking_id, id);
-- The dashboard card: holds, confirmations and cancellations since midnight.
CREATE INDEX bookings_history_today_idx ON bookings_history (to_status, at);

-- A project's booking terms; a project without a row has the settings' defaults.
CREATE TABLE bookings_terms (
    project_id         uuid        PRIMARY KEY,
    amount_kind        text        NOT NULL CHECK (amount_kind IN ('fixed', 'percent')),
    amount_minor       bigint      CHECK (amount_minor > 0),
    amount_bps         integer     CHECK (amount_bps BETWEEN 1 AND 1000),
    free_cancel_hours  integer     NOT NULL CHECK (free_cancel_hours BETWEEN 0 AND 8760),
    fee_fixed_minor    bigint      NOT NULL CHECK (fee_fixed_minor >= 0),
    fee_bps            integer     NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
    updated_by         text        NOT NULL,
    updated_at         timestamptz NOT NULL,
    CHECK ((amount_kind = 'fixed' AND amount_minor IS NOT NULL AND amount_bps IS NULL)
           OR (amount_kind = 'percent' AND amount_bps IS NOT NULL AND amount_minor IS NULL))
);

-- Each captured payment once, with what it did (record_payment_in is idempotent per payment).
CREATE TABLE bookings_payments (
    payment_id    uuid        PRIMARY KEY,
    booking_id    uuid        NOT NULL REFERENCES bookings_bookings (id) ON DELETE CASCADE,
    amount_minor  bigint      NOT NULL CHECK (amount_minor >= 0),
    currency      text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    outcome       text        NOT NULL CHECK (outcome IN ('confirmed', 'unit-taken',
                      'already-paid', 'booking-closed')),
    recorded_at   timestamptz NOT NULL
);
CREATE INDEX bookings_payments_booking_idx ON bookings_payments (booking_id, recorded_at);

-- Each processed refund once; ``cancellation``: it pays out a cancelled booking's refund
-- (others give back payments the booking refused).
CREATE TABLE bookings_refunds (
    refund_id     uuid        PRIMARY KEY,
    booking_id    uuid        NOT NULL REFERENCES bookings_bookings (id) ON DELETE CASCADE,
    amount_minor  bigint      NOT NULL CHECK (amount_minor >= 0),
    cancellation  boolean     NOT NULL,
    recorded_at   timestamptz NOT NULL
);
CREATE INDEX bookings_refunds_booking_idx ON bookings_refunds (booking_id, recorded_at);
