-- Users, their roles, phone OTP challenges, sign-in sessions (refresh-token families) and the
-- refresh tokens of each session. Secrets are stored only as hashes.
CREATE TABLE auth_users (
    id              uuid        PRIMARY KEY,
    phone           text        NOT NULL UNIQUE,   -- E.164
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_login_at   timestamptz
);

CREATE TABLE auth_user_roles (
    user_id         uuid        NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    role            text        NOT NULL
                    CHECK (role IN ('buyer', 'agent', 'builder', 'staff', 'admin')),
    granted_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
);

-- One row per code sent. code_hash is HMAC-SHA256(server secret, challenge id || code), so a
-- code is only good for its own challenge and a copy of the table reveals no code.
CREATE TABLE auth_otp_challenges (
    id              uuid        PRIMARY KEY,
    phone           text        NOT NULL,
    code_hash       bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    consumed_at     timestamptz
);
CREATE INDEX auth_otp_challenges_expires_idx ON auth_otp_challenges (expires_at);

-- A session is one refresh-token family: one device's sign-in.
CREATE TABLE auth_sessions (
    id              uuid        PRIMARY KEY,
    user_id         uuid        NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    device          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    revoke_reason   text
);
CREATE INDEX auth_sessions_user_idx ON auth_sessions (user_id, created_at) WHERE revoked_at IS NULL;

-- token_hash is SHA-256 of the opaque token; rotated_at is set when it is exchanged.
CREATE TABLE auth_refresh_tokens (
    id              uuid        PRIMARY KEY,
    family_id       uuid        NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    user_id         uuid        NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    token_hash      bytea       NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    rotated_at      timestamptz,
    revoked_at      timestamptz
);
CREATE INDEX auth_refresh_tokens_family_idx ON auth_refresh_tokens (family_id);
CREATE INDEX auth_refresh_tokens_expires_idx ON auth_refresh_tokens (expires_at);
