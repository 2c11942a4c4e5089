-- Every change of a builder's verified badge: who changed it (an actor reference:
-- `staff:<id>` by hand, `system:kyc` when the owner's KYC decision moved it, or the plugin
-- that did) and, for a change by hand, why. The console shows it on the builder's page.
CREATE TABLE catalog_builder_verifications (
    id          uuid        PRIMARY KEY,
    builder_id  uuid        NOT NULL REFERENCES catalog_builders (id) ON DELETE CASCADE,
    verified    boolean     NOT NULL,
    actor       text        NOT NULL,
    reason      text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_builder_verifications_builder_idx
    ON catalog_builder_verifications (builder_id, at DESC, id DESC);
