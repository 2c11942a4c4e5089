DROP TABLE IF EXISTS auth_kyc_daily_decisions;
DROP TABLE IF EXISTS auth_kyc_reveals;
DROP TABLE IF EXISTS auth_kyc_transitions;
DROP TABLE IF EXISTS auth_kyc_numbers;
DROP TABLE IF EXISTS auth_kyc_records;
