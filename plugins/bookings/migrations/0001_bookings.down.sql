-- Undoes 0001_bookings.sql (`propmubi migrate down --plugin bookings --to 0`).
DROP TABLE bookings_refunds;
DROP TABLE bookings_payments;
DROP TABLE bookings_terms;
DROP TABLE bookings_history;
DROP TABLE bookings_bookings;
