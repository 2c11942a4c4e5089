-- Search: a weighted, unaccented tsvector per project (kept by triggers, builder renames
-- included), trigram indexes for suggest, geo indexes for radius and polygon queries, and the
-- btree indexes behind every sort's keyset pagination. Every index over projects is partial on
-- moderation = 'published': nothing public reads drafts, and the indexes stay small.

-- unaccent() is STABLE (it reads its dictionary through search_path), so it cannot appear in
-- an index expression. With the dictionary and the function both schema-qualified the result
-- depends on its argument only, which is what IMMUTABLE promises. Kept a one-line SQL function
-- (no SET search_path) so that the planner inlines it and index expressions match queries.
CREATE FUNCTION catalog_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$;

-- ll_to_earth() in earthdistance 1.1 calls cube() and earth() through search_path, which
-- breaks index expressions under an empty search_path (autovacuum, pg_restore). The same
-- formula with every name qualified.
CREATE FUNCTION catalog_earth(lat double precision, lng double precision) RETURNS public.earth
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT public.cube(public.cube(public.cube(
                     public.earth() * cos(radians($1)) * cos(radians($2))),
                     public.earth() * cos(radians($1)) * sin(radians($2))),
                     public.earth() * sin(radians($1)))::public.earth $$;

-- The document: name (A), locality and builder name (B), city (C), description (D). The
-- 'simple' configuration: names of places and projects must not be stemmed or dropped as
-- stop words, and queries use the same configuration.
CREATE FUNCTION catalog_project_document(name text, locality text, builder text, city text,
                                         description text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT setweight(to_tsvector('pg_catalog.simple', catalog_fold(coalesce($1, ''))), 'A')
              || setweight(to_tsvector('pg_catalog.simple', catalog_fold(coalesce($2, ''))), 'B')
              || setweight(to_tsvector('pg_catalog.simple', catalog_fold(coalesce($3, ''))), 'B')
              || setweight(to_tsvector('pg_catalog.simple', catalog_fold(coalesce($4, ''))), 'C')
              || setweight(to_tsvector('pg_catalog.simple', catalog_fold(coalesce($5, ''))), 'D') $$;

ALTER TABLE catalog_projects ADD COLUMN search_document tsvector NOT NULL DEFAULT ''::tsvector;

CREATE FUNCTION catalog_projects_document_trigger() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.search_document := catalog_project_document(
        NEW.name, NEW.locality,
        (SELECT b.name FROM catalog_builders b WHERE b.id = NEW.builder_id),
        NEW.city, NEW.description);
    RETURN NEW;
END
$$;

CREATE TRIGGER catalog_projects_document
    BEFORE INSERT OR UPDATE OF name, locality, city, description, builder_id
    ON catalog_projects
    FOR EACH ROW EXECUTE FUNCTION catalog_projects_document_trigger();

-- A builder's rename re-indexes its projects (through the projects' own trigger).
CREATE FUNCTION catalog_builders_document_trigger() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE catalog_projects SET builder_id = builder_id WHERE builder_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER catalog_builders_document
    AFTER UPDATE OF name ON catalog_builders
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION catalog_builders_document_trigger();

UPDATE catalog_projects SET builder_id = builder_id;

-- GIN indexes are built with fastupdate off: projects change rarely and are read on every
-- search, and a pending list (flushed only by vacuum) would make every search scan it.

-- Full text.
CREATE INDEX catalog_projects_search_idx ON catalog_projects USING gin (search_document)
    WITH (fastupdate = off) WHERE moderation = 'published';

-- Suggest: trigram indexes over folded names (word_similarity / LIKE prefix).
CREATE INDEX catalog_projects_name_trgm_idx ON catalog_projects
    USING gin (catalog_fold(name) gin_trgm_ops) WITH (fastupdate = off)
    WHERE moderation = 'published';
CREATE INDEX catalog_projects_locality_trgm_idx ON catalog_projects
    USING gin (catalog_fold(locality) gin_trgm_ops) WITH (fastupdate = off)
    WHERE moderation = 'published';
CREATE INDEX catalog_builders_name_trgm_idx ON catalog_builders
    USING gin (catalog_fold(name) gin_trgm_ops) WITH (fastupdate = off);

-- Geo: a radius is an earth_box (cube GiST) plus an exact earth_distance recheck; a polygon
-- is point <@ polygon on (lng, lat) (point GiST).
CREATE INDEX catalog_projects_earth_idx ON catalog_projects
    USING gist (catalog_earth(lat, lng)) WHERE moderation = 'published';
CREATE INDEX catalog_projects_point_idx ON catalog_projects
    USING gist (point(lng, lat)) WHERE moderation = 'published';

-- Sorts and keyset pagination: each sort key is a non-null expression followed by id, so that
-- a row comparison (key, id) > (cursor key, cursor id) is the whole "after the cursor" test.
CREATE INDEX catalog_projects_newest_idx ON catalog_projects
    (coalesce(published_at, '-infinity'::timestamptz) DESC, id DESC)
    WHERE moderation = 'published';
CREATE INDEX catalog_projects_price_asc_idx ON catalog_projects
    (coalesce(price_min, 9223372036854775807), id) WHERE moderation = 'published';
CREATE INDEX catalog_projects_price_desc_idx ON catalog_projects
    (coalesce(price_max, -1) DESC, id DESC) WHERE moderation = 'published';

-- Filters: city (with the feed's order: featured first, then newest) and locality.
CREATE INDEX catalog_projects_city_idx ON catalog_projects
    (lower(city), featured DESC, coalesce(published_at, '-infinity'::timestamptz) DESC, id DESC)
    WHERE moderation = 'published';
CREATE INDEX catalog_projects_locality_idx ON catalog_projects (lower(locality))
    WHERE moderation = 'published';
CREATE INDEX catalog_projects_amenities_idx ON catalog_projects USING gin (amenities)
    WITH (fastupdate = off) WHERE moderation = 'published';
