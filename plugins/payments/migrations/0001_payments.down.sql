-- Undoes 0001_payments.sql (`propmubi migrate down --plugin payments --to 0`).
DROP TABLE payments_activity;
DROP TABLE payments_items;
