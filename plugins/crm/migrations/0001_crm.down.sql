-- Undoes 0001_crm.sql (`propmubi migrate down --plugin crm --to 0`).
DROP TABLE crm_lead_history;
DROP TABLE crm_enquiries;
DROP TABLE crm_leads;
DROP TABLE crm_agents;
