-- Undoes 0001_agents.sql (`propmubi migrate down --plugin agents --to 0`).
DROP TABLE agents_history;
DROP TABLE agents_listings;
DROP TABLE agents_holidays;
DROP TABLE agents_territories;
DROP TABLE agents_registrations;
DROP TABLE agents_kyc;
DROP TABLE agents_agents;
