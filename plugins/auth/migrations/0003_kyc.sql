-- KYC of agents and builders: one record per (user, role), its identity numbers sealed with
-- AES-256-GCM (plugins/auth/pii.py), the history of its status changes, every reveal of a
-- number in the console, and the per-day decision counts the dashboard shows.
CREATE TABLE auth_kyc_records (
    id              uuid        PRIMARY KEY,
    user_id         uuid        NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    role            text        NOT NULL CHECK (role IN ('agent', 'builder')),
    status          text        NOT NULL
                    CHECK (status IN ('submitted', 'verified', 'rejected', 'resubmitted')),
    legal_name      text,                       -- NULL once erased
    document_kind   text        CHECK (document_kind IN ('pan', 'aadhaar')),
    reason          text,                       -- of the latest rejection
    submitted_at    timestamptz NOT NULL,       -- latest (re)submission: the queue's order
    decided_at      timestamptz,
    decided_by      uuid,                       -- console staff id of the latest decision
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    erased_at       timestamptz,
    UNIQUE (user_id, role)
);
-- The review queue: pending records, oldest submission first (keyset on submitted_at, id).
CREATE INDEX auth_kyc_records_queue_idx ON auth_kyc_records (submitted_at, id)
    WHERE status IN ('submitted', 'resubmitted');

-- key_id names the key that sealed the row (rotation finds rows by it); masked is what every
-- screen shows (all but the last four characters as X), so lists never decrypt.
CREATE TABLE auth_kyc_numbers (
    record_id       uuid        NOT NULL REFERENCES auth_kyc_records (id) ON DELETE CASCADE,
    kind            text        NOT NULL CHECK (kind IN ('pan', 'aadhaar', 'rera', 'licence')),
    key_id          text        NOT NULL,
    nonce           bytea       NOT NULL,
    ciphertext      bytea       NOT NULL,
    masked          text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (record_id, kind)
);
CREATE INDEX auth_kyc_numbers_key_idx ON auth_kyc_numbers (key_id);

CREATE TABLE auth_kyc_transitions (
    id              uuid        PRIMARY KEY,    -- UUIDv7: orders a record's history
    record_id       uuid        NOT NULL REFERENCES auth_kyc_records (id) ON DELETE CASCADE,
    old_status      text        NOT NULL,
    new_status      text        NOT NULL,
    reason          text,
    by_user         uuid,                       -- the applicant, for (re)submissions
    by_staff        uuid,                       -- the reviewer, for decisions
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth_kyc_transitions_record_idx ON auth_kyc_transitions (record_id, id);

-- The audit of reveals: who saw whose number of which kind, why, when, from where. No FK to
-- the record and never the number itself: the audit outlives erasure with its facts intact.
CREATE TABLE auth_kyc_reveals (
    id              uuid        PRIMARY KEY,
    record_id       uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    kind            text        NOT NULL,
    staff_id        uuid        NOT NULL,
    reason          text        NOT NULL,
    ip              text,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth_kyc_reveals_record_idx ON auth_kyc_reveals (record_id, at);
CREATE INDEX auth_kyc_reveals_user_idx ON auth_kyc_reveals (user_id);

-- Fed by the auth.kyc_status_changed consumer (one increment per event: the core records the
-- handled event in the same transaction).
CREATE TABLE auth_kyc_daily_decisions (
    day             date        NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('verified', 'rejected')),
    count           integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (day, outcome)
);
