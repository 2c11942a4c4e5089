CREATE TABLE reference_notes (
    id          uuid        PRIMARY KEY,
    text        text        NOT NULL,
    tags        text[]      NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- The list route reads the newest notes first.
CREATE INDEX reference_notes_created_idx ON reference_notes (created_at DESC, id DESC);
