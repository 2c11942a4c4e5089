-- Undoes 0002_visits.sql (`propmubi migrate down --plugin crm --to 1`).
DROP TABLE crm_visit_history;
DROP TABLE crm_visits;
