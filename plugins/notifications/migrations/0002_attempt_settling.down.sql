-- Undoes 0002_attempt_settling.sql: a found attempt reads as sent, a failed lookup as
-- retryable (nothing was sent by either).
ALTER TABLE notifications_attempts DROP CONSTRAINT notifications_attempts_status_check;
UPDATE notifications_attempts SET status = 'sent' WHERE status = 'found';
UPDATE notifications_attempts SET status = 'retryable' WHERE status = 'lookup_failed';
ALTER TABLE notifications_attempts ADD CONSTRAINT notifications_attempts_status_check
    CHECK (status IN ('sending', 'sent', 'failed', 'retryable', 'maybe_sent', 'interrupted'));
