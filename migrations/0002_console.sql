-- Staff accounts of the console. Buyers, agents and builders are the auth plugin's business;
-- these are the people who run the platform, created with `propmubi staff create`.
CREATE TABLE core_staff (
    id              uuid        PRIMARY KEY,
    email           text        NOT NULL,
    name            text        NOT NULL,
    -- argon2id, in the PHC string format (parameters and salt included).
    password_hash   text        NOT NULL,
    roles           text[]      NOT NULL DEFAULT ARRAY['staff']::text[]
                                CHECK (cardinality(roles) > 0
                                       AND roles <@ ARRAY['staff', 'admin']::text[]),
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_login_at   timestamptz,
    disabled        boolean     NOT NULL DEFAULT false
);
-- Sign-in looks the address up however it was typed; one account per address.
CREATE UNIQUE INDEX core_staff_email_idx ON core_staff (lower(email));
