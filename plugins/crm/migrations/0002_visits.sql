-- Site visits of leads (visits/): one row per visit, kept under the same id when it is
-- rescheduled, and every change of a visit (its old time when rescheduled). Names start with
-- the plugin's name; this file never changes once applied (add 0003_<what>.sql instead).

-- A visit of a lead to its project's site. ``starts_at`` is a slot start of the business
-- calendar; ``status``: scheduled, then completed, cancelled or no_show. ``remind_*_at`` is
-- when a reminder falls due (NULL: none, e.g. a visit booked less than 24 h ahead has no 24 h
-- reminder); ``reminded_*_at`` when it went out (the job's exactly-once mark). A reschedule
-- sets both again for the new time. ``stage_before`` is the lead's stage when the visit was
-- booked (where a cancelled or missed visit sends the lead back).
CREATE TABLE crm_visits (
    id              uuid        PRIMARY KEY,
    lead_id         uuid        NOT NULL REFERENCES crm_leads (id) ON DELETE CASCADE,
    project_id      uuid        NOT NULL,
    buyer_user_id   uuid,
    status          text        NOT NULL DEFAULT 'scheduled'
                                CHECK (status IN ('scheduled', 'completed', 'cancelled',
                                                  'no_show')),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL CHECK (ends_at > starts_at),
    stage_before    text,
    booked_by       text        NOT NULL,
    remind_24h_at   timestamptz,
    reminded_24h_at timestamptz,
    remind_1h_at    timestamptz,
    reminded_1h_at  timestamptz,
    reschedules     integer     NOT NULL DEFAULT 0,
    attended        boolean,
    rating          smallint    CHECK (rating BETWEEN 1 AND 5),
    notes           text,
    cancel_reason   text,
    closed_at       timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- One scheduled visit per lead at a time (the service checks first; this is the backstop).
CREATE UNIQUE INDEX crm_visits_one_scheduled_idx ON crm_visits (lead_id)
    WHERE status = 'scheduled';
-- A slot's bookings (capacity), and the upcoming visits, soonest first.
CREATE INDEX crm_visits_slot_idx ON crm_visits (project_id, starts_at)
    WHERE status = 'scheduled';
CREATE INDEX crm_visits_upcoming_idx ON crm_visits (starts_at, id) WHERE status = 'scheduled';
-- A lead's visits.
CREATE INDEX crm_visits_lead_idx ON crm_visits (lead_id, starts_at);
-- The reminder job: armed reminders not sent yet.
CREATE INDEX crm_visits_remind_24h_idx ON crm_visits (remind_24h_at)
    WHERE status = 'scheduled' AND reminded_24h_at IS NULL AND remind_24h_at IS NOT NULL;
CREATE INDEX crm_visits_remind_1h_idx ON crm_visits (remind_1h_at)
    WHERE status = 'scheduled' AND reminded_1h_at IS NULL AND remind_1h_at IS NOT NULL;

-- Every change of a visit, oldest first: scheduled, rescheduled (``from_starts_at`` is the
-- old time), cancelled, reminded, no_show, completed. ``actor`` is user:/staff:/system:.
CREATE TABLE crm_visit_history (
    id              bigserial   PRIMARY KEY,
    visit_id        uuid        NOT NULL REFERENCES crm_visits (id) ON DELETE CASCADE,
    kind            text        NOT NULL,
    from_starts_at  timestamptz,
    starts_at       timestamptz,
    reason          text,
    actor           text        NOT NULL,
    at              timestamptz NOT NULL
);
CREATE INDEX crm_visit_history_visit_idx ON crm_visit_history (visit_id, id);
