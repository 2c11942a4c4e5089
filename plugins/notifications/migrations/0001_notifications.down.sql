-- Undoes 0001_notifications.sql (`propmubi migrate down --plugin notifications --to 0`).
DROP TABLE notifications_devices;
DROP TABLE notifications_preferences;
DROP TABLE notifications_attempts;
DROP TABLE notifications_deliveries;
DROP TABLE notifications_notifications;
DROP TABLE notifications_templates;
