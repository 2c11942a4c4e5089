DROP TABLE auth_refresh_tokens;
DROP TABLE auth_sessions;
DROP TABLE auth_otp_challenges;
DROP TABLE auth_user_roles;
DROP TABLE auth_users;
