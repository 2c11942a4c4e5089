-- The crm plugin's first schema: its routing copy of the agents, leads, the enquiries that
-- made them, every change of a lead, and the SLA clock (columns of the lead). Names of tables
-- and indexes start with the plugin's name. Once applied anywhere this file never changes:
-- add 0002_<what>.sql (and its .down.sql) instead.

-- The agents plugin's advisors as routing needs them, kept from its events (agent_activated,
-- agent_suspended, agent_updated, listing_changed). ``territories`` is a JSON list of
-- {"city", "locality"} (matching keys, case-folded; "" = the whole city); ``holidays`` a JSON
-- list of {"starts_on", "ends_on"}. ``rotation`` / ``in_rotation`` / ``last_assigned_at`` are
-- routing's fairness state (routing.py). ``sequence`` is the last agents event applied.
CREATE TABLE crm_agents (
    agent_id          uuid        PRIMARY KEY,
    user_id           uuid,
    name              text        NOT NULL DEFAULT '',
    active            boolean     NOT NULL DEFAULT false,
    capacity          integer     NOT NULL DEFAULT 0 CHECK (capacity >= 0),
    territories       jsonb       NOT NULL DEFAULT '[]',
    projects          uuid[]      NOT NULL DEFAULT '{}',
    holidays          jsonb       NOT NULL DEFAULT '[]',
    rotation          bigint      NOT NULL DEFAULT 0,
    in_rotation       boolean     NOT NULL DEFAULT false,
    last_assigned_at  timestamptz,
    sequence          bigint      NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
-- "My leads": the signed-in advisor's agent id.
CREATE INDEX crm_agents_user_idx ON crm_agents (user_id);

-- A lead: one person (normalised phone) interested in one project. ``closed_at`` is set when
-- it reaches a terminal stage. The sla_* columns are its SLA clock (pipeline.py).
CREATE TABLE crm_leads (
    id                  uuid        PRIMARY KEY,
    project_id          uuid        NOT NULL,
    unit_id             uuid,
    phone               text        NOT NULL,
    name                text        NOT NULL,
    email               text,
    city                text        NOT NULL DEFAULT '',
    locality            text        NOT NULL DEFAULT '',
    source              text        NOT NULL,
    stage               text        NOT NULL,
    lost_reason         text,
    agent_id            uuid,
    assigned_at         timestamptz,
    first_response_at   timestamptz,
    last_enquiry_at     timestamptz NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    closed_at           timestamptz,
    sla_kind            text,
    sla_cycle           integer     NOT NULL DEFAULT 1,
    sla_started_at      timestamptz,
    sla_paused_at       timestamptz,
    sla_paused_seconds  bigint      NOT NULL DEFAULT 0,
    sla_warned_at       timestamptz,
    sla_breached_at     timestamptz
);
-- Dedup: the open lead of a (project, phone), newest first (under an advisory lock).
CREATE INDEX crm_leads_dedup_idx ON crm_leads (project_id, phone, last_enquiry_at DESC)
    WHERE closed_at IS NULL;
-- The board and the staff list: by stage, newest first.
CREATE INDEX crm_leads_stage_idx ON crm_leads (stage, created_at DESC, id DESC);
CREATE INDEX crm_leads_created_idx ON crm_leads (created_at DESC, id DESC);
-- An advisor's leads, and routing's count of their open leads.
CREATE INDEX crm_leads_agent_idx ON crm_leads (agent_id, created_at DESC, id DESC);
CREATE INDEX crm_leads_agent_open_idx ON crm_leads (agent_id) WHERE closed_at IS NULL;
-- The staff queue of open leads nobody has.
CREATE INDEX crm_leads_unassigned_idx ON crm_leads (created_at, id)
    WHERE agent_id IS NULL AND closed_at IS NULL;
-- The SLA job: running clocks not breached yet, oldest first.
CREATE INDEX crm_leads_sla_running_idx ON crm_leads (sla_started_at, id)
    WHERE sla_kind IS NOT NULL AND sla_paused_at IS NULL AND sla_breached_at IS NULL;
-- The breaches queue: breached open leads, latest first.
CREATE INDEX crm_leads_sla_breached_idx ON crm_leads (sla_breached_at DESC, id DESC)
    WHERE sla_breached_at IS NOT NULL AND closed_at IS NULL;

-- Every enquiry, each joined to its lead (a repeat enquiry adds a row, not a lead).
CREATE TABLE crm_enquiries (
    id              uuid        PRIMARY KEY,
    lead_id         uuid        NOT NULL REFERENCES crm_leads (id) ON DELETE CASCADE,
    project_id      uuid        NOT NULL,
    unit_id         uuid,
    phone           text        NOT NULL,
    name            text        NOT NULL,
    email           text,
    message         text        NOT NULL DEFAULT '',
    preferred_time  text,
    source          text        NOT NULL,
    user_id         uuid,
    partner         text,
    external_ref    text,
    created_at      timestamptz NOT NULL
);
CREATE INDEX crm_enquiries_lead_idx ON crm_enquiries (lead_id, created_at, id);

-- Every change of a lead, oldest first: created, enquiry, assigned, reassigned, unassigned,
-- stage, sla_warning, sla_breached. ``actor`` is user:<id>, staff:<id> or system:<part>.
CREATE TABLE crm_lead_history (
    id          bigserial   PRIMARY KEY,
    lead_id     uuid        NOT NULL REFERENCES crm_leads (id) ON DELETE CASCADE,
    kind        text        NOT NULL,
    from_stage  text,
    to_stage    text,
    agent_id    uuid,
    reason      text,
    actor       text        NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX crm_lead_history_lead_idx ON crm_lead_history (lead_id, id);
