-- The KYC state of builder-role users, as the auth plugin's auth.kyc_status_changed events
-- report it (keyed by user id, so a decision that arrives before the user's builder profile
-- exists still counts). Builders may change projects only while theirs is verified.
CREATE TABLE catalog_builder_kyc (
    user_id uuid PRIMARY KEY,
    status text NOT NULL,
    -- The event's position among its user's auth events: an older redelivery changes nothing.
    sequence bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

