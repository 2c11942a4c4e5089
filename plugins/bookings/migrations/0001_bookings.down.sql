-- Undoes 0001_bookings.sql (`propmubi migrate down --plugin bookings --to 0`).
DROP TABLE bookings_activity;
DROP TABLE bookings_items;
