-- Display names (for staff searching users), erasure, and the consent ledger.
ALTER TABLE auth_users ADD COLUMN name text;
-- Set when the user deleted their account: the row stays (other tables point at it) but holds
-- no personal data, and the phone number is free to register again.
ALTER TABLE auth_users ADD COLUMN erased_at timestamptz;
-- Staff search users by the start of a phone number or of a name.
CREATE INDEX auth_users_phone_prefix_idx ON auth_users (phone text_pattern_ops);
CREATE INDEX auth_users_name_prefix_idx ON auth_users (lower(name) text_pattern_ops)
    WHERE name IS NOT NULL;
CREATE INDEX auth_users_created_idx ON auth_users (created_at);

-- Append-only: every grant and withdrawal, with the policy version it referred to and where
-- it came from. The latest row of a (user, purpose) is the consent in force.
CREATE TABLE auth_consents (
    id              bigserial   PRIMARY KEY,
    user_id         uuid        NOT NULL REFERENCES auth_users (id),
    purpose         text        NOT NULL,
    policy_version  text        NOT NULL,
    granted         boolean     NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    ip              inet,
    user_agent      text
);
CREATE INDEX auth_consents_user_idx ON auth_consents (user_id, purpose, recorded_at DESC, id DESC);
