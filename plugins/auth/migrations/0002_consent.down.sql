DROP TABLE IF EXISTS auth_consents;
DROP INDEX IF EXISTS auth_users_created_idx;
DROP INDEX IF EXISTS auth_users_name_prefix_idx;
DROP INDEX IF EXISTS auth_users_phone_prefix_idx;
ALTER TABLE auth_users DROP COLUMN IF EXISTS erased_at;
ALTER TABLE auth_users DROP COLUMN IF EXISTS name;
