-- The catalogue: builders -> projects -> towers -> units, and the moderation history of
-- projects. Money is integer minor units with a currency; areas are square feet.
-- Search columns and indexes (tsvector, trigram, geo) come in 0003_search.sql; media in
-- 0002_media.sql.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS cube;
CREATE EXTENSION IF NOT EXISTS earthdistance;

CREATE TABLE catalog_builders (
    id                uuid        PRIMARY KEY,
    -- The auth user who manages this builder (holder of the builder role); null for builders
    -- created by staff or the seed before anyone claimed them.
    owner_user_id     uuid        UNIQUE,
    name              text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    slug              text        NOT NULL UNIQUE,
    rera_promoter_id  text,
    -- Fed by the legal plugin's events (a verified builder shows a badge).
    verified          boolean     NOT NULL DEFAULT false,
    description       text        NOT NULL DEFAULT '',
    website           text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE catalog_projects (
    id                uuid        PRIMARY KEY,
    builder_id        uuid        NOT NULL REFERENCES catalog_builders (id),
    slug              text        NOT NULL UNIQUE,
    name              text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    city              text        NOT NULL,
    locality          text        NOT NULL,
    address           text        NOT NULL DEFAULT '',
    lat               double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng               double precision NOT NULL CHECK (lng BETWEEN -180 AND 180),
    rera_number       text,
    status            text        NOT NULL DEFAULT 'upcoming'
                      CHECK (status IN ('upcoming', 'under_construction', 'ready')),
    possession_date   date,
    amenities         text[]      NOT NULL DEFAULT '{}',
    description       text        NOT NULL DEFAULT '',
    -- Moderation: builders edit drafts (and rejected projects), submit them for review; staff
    -- publish or reject. Only published projects are public.
    moderation        text        NOT NULL DEFAULT 'draft'
                      CHECK (moderation IN ('draft', 'in_review', 'published', 'rejected')),
    rejection_reason  text,
    featured          boolean     NOT NULL DEFAULT false,
    -- Derived from the project's units in the same transaction as any unit change: the price
    -- range and bedroom counts of its units that are not sold or blocked, and how many are
    -- available. Search filters on these without touching the units.
    currency          char(3)     NOT NULL DEFAULT 'INR',
    price_min         bigint,
    price_max         bigint,
    bedrooms          smallint[]  NOT NULL DEFAULT '{}',
    units_total       integer     NOT NULL DEFAULT 0,
    units_available   integer     NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    submitted_at      timestamptz,
    published_at      timestamptz
);
CREATE INDEX catalog_projects_builder_idx ON catalog_projects (builder_id, created_at DESC);
CREATE INDEX catalog_projects_review_idx ON catalog_projects (submitted_at)
    WHERE moderation = 'in_review';

-- Every moderation step, for the console and for builders to read why.
CREATE TABLE catalog_project_reviews (
    id                bigserial   PRIMARY KEY,
    project_id        uuid        NOT NULL REFERENCES catalog_projects (id) ON DELETE CASCADE,
    action            text        NOT NULL CHECK (action IN ('submitted', 'published', 'rejected', 'unpublished')),
    reason            text,
    actor             text        NOT NULL,   -- "user:<uuid>" or "staff:<id>"
    at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_project_reviews_project_idx ON catalog_project_reviews (project_id, at);

CREATE TABLE catalog_towers (
    id                uuid        PRIMARY KEY,
    project_id        uuid        NOT NULL REFERENCES catalog_projects (id) ON DELETE CASCADE,
    name              text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    floors            smallint    NOT NULL CHECK (floors BETWEEN 1 AND 200),
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

CREATE TABLE catalog_units (
    id                uuid        PRIMARY KEY,
    project_id        uuid        NOT NULL REFERENCES catalog_projects (id) ON DELETE CASCADE,
    tower_id          uuid        NOT NULL REFERENCES catalog_towers (id) ON DELETE CASCADE,
    code              text        NOT NULL CHECK (length(code) BETWEEN 1 AND 40),  -- "A-1203"
    unit_type         text        NOT NULL,    -- "2BHK", "3BHK", "Studio", "Villa"...
    bedrooms          smallint    NOT NULL CHECK (bedrooms BETWEEN 0 AND 20),
    carpet_area_sqft  numeric(9,2) NOT NULL CHECK (carpet_area_sqft > 0),
    super_area_sqft   numeric(9,2) CHECK (super_area_sqft IS NULL OR super_area_sqft >= carpet_area_sqft),
    floor             smallint    NOT NULL CHECK (floor BETWEEN -5 AND 200),
    facing            text        CHECK (facing IN ('N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW')),
    price_minor       bigint      NOT NULL CHECK (price_minor > 0),
    currency          char(3)     NOT NULL DEFAULT 'INR',
    status            text        NOT NULL DEFAULT 'available'
                      CHECK (status IN ('available', 'held', 'booked', 'sold', 'blocked')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tower_id, code)
);
CREATE INDEX catalog_units_project_idx ON catalog_units (project_id, status);
