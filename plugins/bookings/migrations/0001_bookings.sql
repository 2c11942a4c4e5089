-- The bookings plugin's first schema. Names of tables and indexes start with the plugin's
-- name. Once applied anywhere this file never changes: add 0002_<what>.sql (and its
-- .down.sql) instead. Nothing migrates by itself: `propmubi migrate up` applies it.
CREATE TABLE bookings_items (
    id          uuid        PRIMARY KEY,
    title       text        NOT NULL,
    note        text        NOT NULL DEFAULT '',
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL
);
-- The list reads newest first, one keyset page at a time.
CREATE INDEX bookings_items_created_idx ON bookings_items (created_at DESC, id DESC);

-- The event handler's effect: one line per handled bookings.item_created. The event's id as
-- the key makes a second run of the handler change nothing.
CREATE TABLE bookings_activity (
    event_id     uuid        PRIMARY KEY,
    item_id      uuid        NOT NULL,
    line         text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
-- The console shows the newest lines.
CREATE INDEX bookings_activity_recorded_idx ON bookings_activity (recorded_at DESC, event_id DESC);
