-- Idempotency-Key records of routes declared idempotent=True (propmubi.web.idempotency).
-- One row per caller (scope), route ("POST <route name>") and key. A 'running' row is a claim
-- held until locked_until (a crashed process's claim lapses then); a 'done' row holds the
-- answer replayed to retries until expires_at. The scheduler deletes rows past expires_at.
CREATE TABLE core_idempotency_keys (
    scope           text        NOT NULL,
    route           text        NOT NULL,
    key             text        NOT NULL,
    -- SHA-256 (hex) of the method, the path, the query string and the body bytes.
    fingerprint     text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('running', 'done')),
    -- Which claim this is: only its holder stores the answer or releases the key.
    owner           uuid        NOT NULL,
    locked_until    timestamptz,
    status          integer,
    headers         jsonb,
    body            bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (scope, route, key),
    CHECK (state = 'running' AND locked_until IS NOT NULL
           OR state = 'done' AND status IS NOT NULL AND headers IS NOT NULL
              AND body IS NOT NULL)
);
-- The purge job deletes by expiry.
CREATE INDEX core_idempotency_keys_expires_idx ON core_idempotency_keys (expires_at);
