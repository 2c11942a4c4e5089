-- The notifications plugin's first schema: templates, notifications, one delivery per
-- (notification, channel), every provider attempt, users' opt-outs and their push devices.
-- Once applied anywhere this file never changes: add 0002_<what>.sql (and its .down.sql)
-- instead.

-- A message per (notification type, channel), edited by staff. Variables are {#name#}.
CREATE TABLE notifications_templates (
    id               uuid        PRIMARY KEY,
    type             text        NOT NULL,
    channel          text        NOT NULL CHECK (channel IN ('sms', 'email', 'push')),
    category         text        NOT NULL,
    kind             text        NOT NULL
                                 CHECK (kind IN ('transactional', 'critical', 'promotional')),
    subject          text,
    body             text        NOT NULL,
    variables        text[]      NOT NULL DEFAULT '{}',
    dlt_template_id  text,
    active           boolean     NOT NULL DEFAULT true,
    created_by       text        NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_by       text        NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT notifications_templates_type_channel_key UNIQUE (type, channel),
    -- Every SMS template carries its DLT template id (TRAI), 19 digits.
    CONSTRAINT notifications_templates_sms_dlt_check
        CHECK (channel <> 'sms' OR dlt_template_id ~ '^[0-9]{19}$')
);
-- The template list, newest first (the unique key serves lookups by type and channel).
CREATE INDEX notifications_templates_created_idx
    ON notifications_templates (created_at DESC, id DESC);
CREATE INDEX notifications_templates_channel_idx
    ON notifications_templates (channel, created_at DESC, id DESC);

-- What a caller asked for. user_id is null for a direct send (an OTP before an account).
CREATE TABLE notifications_notifications (
    id            uuid        PRIMARY KEY,
    type          text        NOT NULL,
    user_id       uuid,
    time_zone     text        NOT NULL,
    variables     jsonb       NOT NULL DEFAULT '{}',
    dedupe_key    text,
    requested_by  text        NOT NULL,
    created_at    timestamptz NOT NULL
);
-- The retention job clears the variables of old notifications.
CREATE INDEX notifications_notifications_created_idx
    ON notifications_notifications (created_at) WHERE variables <> '{}';
-- The same dedupe_key twice is one notification.
CREATE UNIQUE INDEX notifications_notifications_dedupe_key
    ON notifications_notifications (dedupe_key) WHERE dedupe_key IS NOT NULL;

-- One message per (notification, channel): its state, the provider it is pinned to once it
-- may have been accepted, and the lease of the worker sending it.
CREATE TABLE notifications_deliveries (
    id                   uuid        PRIMARY KEY,
    notification_id      uuid        NOT NULL
                                     REFERENCES notifications_notifications (id) ON DELETE CASCADE,
    channel              text        NOT NULL CHECK (channel IN ('sms', 'email', 'push')),
    user_id              uuid,
    -- Null for a direct send (send_now): its body is not stored (an OTP is a secret).
    template_id          uuid        REFERENCES notifications_templates (id),
    category             text        NOT NULL,
    kind                 text        NOT NULL,
    -- The address (phone, e-mail) or the push tokens in order; address_index is the one used.
    -- A direct send stores them masked (+91******2377), and so does an erasure.
    addresses            text[]      NOT NULL,
    address_index        integer     NOT NULL DEFAULT 0,
    status               text        NOT NULL CHECK (status IN ('pending', 'deferred', 'sending',
                                                     'sent', 'failed', 'skipped', 'unknown')),
    reason               text,
    attempts             integer     NOT NULL DEFAULT 0,
    -- The provider of the next (or current, or last) attempt.
    provider             text,
    -- It may have been accepted by `provider`: no other provider may ever send it.
    pinned               boolean     NOT NULL DEFAULT false,
    message_key          text        NOT NULL,
    next_attempt_at      timestamptz NOT NULL,
    lease_expires_at     timestamptz,
    -- The recipient's local day this message counts against the daily cap (non-critical).
    counted_on           date,
    provider_message_id  text,
    sent_at              timestamptz,
    -- When its addresses (and those of its attempts) were masked: from the start for a direct
    -- send, at the recipient's erasure (auth.user_erased: a masked delivery is never sent
    -- again), or by the retention job once it is finished and old.
    masked_at            timestamptz,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    CONSTRAINT notifications_deliveries_notification_channel_key
        UNIQUE (notification_id, channel)
);
-- What the send_due job picks up, and the leases it checks.
CREATE INDEX notifications_deliveries_due_idx ON notifications_deliveries (next_attempt_at)
    WHERE status IN ('pending', 'deferred');
CREATE INDEX notifications_deliveries_lease_idx ON notifications_deliveries (lease_expires_at)
    WHERE status = 'sending';
-- The console's ledger: everything, by status, by channel; newest first.
CREATE INDEX notifications_deliveries_created_idx
    ON notifications_deliveries (created_at DESC, id DESC);
CREATE INDEX notifications_deliveries_status_idx
    ON notifications_deliveries (status, created_at DESC, id DESC);
CREATE INDEX notifications_deliveries_channel_idx
    ON notifications_deliveries (channel, created_at DESC, id DESC);
-- The daily cap, and the dashboard's counts of today.
CREATE INDEX notifications_deliveries_cap_idx ON notifications_deliveries (user_id, counted_on)
    WHERE counted_on IS NOT NULL;
CREATE INDEX notifications_deliveries_updated_idx
    ON notifications_deliveries (status, updated_at);
-- An erasure finds the user's deliveries.
CREATE INDEX notifications_deliveries_user_idx ON notifications_deliveries (user_id)
    WHERE user_id IS NOT NULL;
-- The retention job: old deliveries whose addresses are still whole.
CREATE INDEX notifications_deliveries_unmasked_idx ON notifications_deliveries (created_at)
    WHERE masked_at IS NULL;

-- Every provider call of a delivery (the ledger's detail).
CREATE TABLE notifications_attempts (
    delivery_id          uuid        NOT NULL
                                     REFERENCES notifications_deliveries (id) ON DELETE CASCADE,
    attempt_no           integer     NOT NULL,
    provider             text        NOT NULL,
    -- The address this attempt went to (masked like the delivery's).
    address              text        NOT NULL,
    status               text        NOT NULL CHECK (status IN ('sending', 'sent', 'failed',
                                                     'retryable', 'maybe_sent', 'interrupted')),
    error                text,
    provider_message_id  text,
    started_at           timestamptz NOT NULL,
    finished_at          timestamptz,
    duration_ms          integer,
    PRIMARY KEY (delivery_id, attempt_no)
);

-- A user's opt-outs: one row per (category, channel) they do not want.
CREATE TABLE notifications_preferences (
    user_id       uuid        NOT NULL,
    category      text        NOT NULL,
    channel       text        NOT NULL CHECK (channel IN ('sms', 'email', 'push')),
    -- 'preferences' (the API) or 'unsubscribe_link'.
    source        text        NOT NULL,
    opted_out_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, category, channel)
);

-- Users' push devices (PUT /notifications/devices): a notification without push_tokens goes to
-- its user's tokens, the most recently seen first. A token is one device: registered by
-- another user (the phone changed hands, another account signed in), it moves to them. A
-- token the provider says is unregistered is deleted.
CREATE TABLE notifications_devices (
    token         text        PRIMARY KEY,
    user_id       uuid        NOT NULL,
    platform      text        NOT NULL CHECK (platform IN ('android', 'ios', 'web')),
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL
);
-- A user's devices, the most recently seen first.
CREATE INDEX notifications_devices_user_idx
    ON notifications_devices (user_id, last_seen_at DESC, created_at DESC);
-- The retention job: devices not seen for months.
CREATE INDEX notifications_devices_seen_idx ON notifications_devices (last_seen_at);
