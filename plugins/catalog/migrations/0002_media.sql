-- Photos of projects and units. Each photo is stored three times (a metadata-free original,
-- a web size and a thumbnail) under keys that start with "projects/<project id>/", so that a
-- deleted project's objects go with one prefix deletion. A gallery is the photos of one
-- project (unit_id null) or of one unit, ordered by a dense position 0..n-1.
CREATE TABLE catalog_media (
    id                uuid        PRIMARY KEY,
    project_id        uuid        NOT NULL REFERENCES catalog_projects (id) ON DELETE CASCADE,
    unit_id           uuid        REFERENCES catalog_units (id) ON DELETE CASCADE,
    position          integer     NOT NULL CHECK (position >= 0),
    alt_text          text        NOT NULL CHECK (length(alt_text) BETWEEN 1 AND 300),
    original_key      text        NOT NULL,
    web_key           text        NOT NULL,
    thumb_key         text        NOT NULL,
    -- Of the stored original (JPEG, PNG or WebP); web and thumbnail are WebP.
    content_type      text        NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    width             integer     NOT NULL CHECK (width > 0),
    height            integer     NOT NULL CHECK (height > 0),
    -- Size and SHA-256 of the upload as received.
    bytes             bigint      NOT NULL CHECK (bytes > 0),
    sha256            text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
-- Galleries in order: a project's own photos (unit_id IS NULL matches in the index), and each
-- unit's. The first also serves the cascade when a project is deleted, the second a unit's.
CREATE INDEX catalog_media_project_gallery_idx ON catalog_media (project_id, unit_id, position);
CREATE INDEX catalog_media_unit_gallery_idx ON catalog_media (unit_id, position)
    WHERE unit_id IS NOT NULL;
