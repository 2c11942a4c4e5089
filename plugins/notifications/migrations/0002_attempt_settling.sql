-- Settling an attempt that may have been accepted (delivery.py): a later attempt first asks
-- the provider (its lookup). 'found': the provider had accepted the message, recorded with its
-- id and not resent; 'lookup_failed': the provider could not be asked (still unknown).
ALTER TABLE notifications_attempts DROP CONSTRAINT notifications_attempts_status_check;
ALTER TABLE notifications_attempts ADD CONSTRAINT notifications_attempts_status_check
    CHECK (status IN ('sending', 'sent', 'failed', 'retryable', 'maybe_sent', 'interrupted',
                      'found', 'lookup_failed'));
