-- What staff decided about a delivery whose fate was unknown (a provider may have accepted it
-- and could not be asked), after checking the provider's own records: it was delivered, it
-- was not and is sent again, or it was not and stays undelivered. Kept with who and why.
CREATE TABLE notifications_decisions (
    id           uuid        PRIMARY KEY,
    delivery_id  uuid        NOT NULL
                             REFERENCES notifications_deliveries (id) ON DELETE CASCADE,
    decision     text        NOT NULL CHECK (decision IN ('delivered', 'resend', 'failed')),
    note         text        NOT NULL,
    actor        text        NOT NULL,
    decided_at   timestamptz NOT NULL
);
CREATE INDEX notifications_decisions_delivery ON notifications_decisions (delivery_id, decided_at);
