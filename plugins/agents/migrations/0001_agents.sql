-- The agents plugin's first schema: advisors (agents) who work leads, their RERA agent
-- registrations, territories, holidays, the projects they list, and every status change.
-- Names of tables and indexes start with the plugin's name. Once applied anywhere this file
-- never changes: add 0002_<what>.sql (and its .down.sql) instead.

-- One agent profile per auth user. ``status`` is derived by the service (service.py's
-- ``derive_status``) and stored so that lists and routing read it with an index; every change
-- of it is a row of agents_history. ``suspended_at`` is set by staff only.
CREATE TABLE agents_agents (
    id              uuid        PRIMARY KEY,
    user_id         uuid        NOT NULL,
    display_name    text        NOT NULL,
    phone           text        NOT NULL,
    email           text        NOT NULL,
    languages       text[]      NOT NULL DEFAULT '{}',
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'active', 'suspended', 'lapsed')),
    capacity        integer     NOT NULL CHECK (capacity >= 0),
    suspended_at    timestamptz,
    suspended_note  text,
    created_by      text        NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    erased_at       timestamptz,
    CONSTRAINT agents_agents_user_key UNIQUE (user_id)
);
-- The console's and the staff API's list: newest first, optionally of one status.
CREATE INDEX agents_agents_created_idx ON agents_agents (created_at DESC, id DESC);
CREATE INDEX agents_agents_status_idx ON agents_agents (status, created_at DESC, id DESC);

-- The KYC status of agent-role users, as auth.kyc_status_changed reports it (keyed by user id:
-- a decision that arrives before the profile still counts). ``sequence`` is the event's
-- position among its user's auth events: an older redelivery changes nothing. A row read
-- synchronously from auth when a profile is created has sequence 0 (any event wins over it).
CREATE TABLE agents_kyc (
    user_id         uuid        PRIMARY KEY,
    status          text        NOT NULL,
    sequence        bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- RERA agent registrations. An agent has at most one ``verified`` (the one in force) and at
-- most one ``submitted`` (waiting for staff) registration; verifying a new one supersedes the
-- old. ``lapsed_at`` and ``expiry_notified_at`` make the daily jobs act exactly once.
CREATE TABLE agents_registrations (
    id                  uuid        PRIMARY KEY,
    agent_id            uuid        NOT NULL REFERENCES agents_agents (id) ON DELETE CASCADE,
    number              text        NOT NULL,
    state               text        NOT NULL,
    valid_from          date        NOT NULL,
    valid_until         date        NOT NULL,
    status              text        NOT NULL
                        CHECK (status IN ('submitted', 'verified', 'rejected', 'superseded')),
    reason              text,
    submitted_at        timestamptz NOT NULL,
    decided_at          timestamptz,
    decided_by          text,
    expiry_notified_at  timestamptz,
    lapsed_at           timestamptz,
    CHECK (valid_until > valid_from)
);
CREATE UNIQUE INDEX agents_registrations_verified_key ON agents_registrations (agent_id)
    WHERE status = 'verified';
CREATE UNIQUE INDEX agents_registrations_submitted_key ON agents_registrations (agent_id)
    WHERE status = 'submitted';
CREATE INDEX agents_registrations_agent_idx ON agents_registrations (agent_id, submitted_at DESC);
-- Who holds a number (another agent may not register the same one).
CREATE INDEX agents_registrations_number_idx ON agents_registrations (state, number)
    WHERE status IN ('submitted', 'verified');
-- The expiring queue and the daily jobs: verified registrations by their end.
CREATE INDEX agents_registrations_until_idx ON agents_registrations (valid_until, id)
    WHERE status = 'verified';
-- The approvals queue: submitted registrations, oldest first.
CREATE INDEX agents_registrations_queue_idx ON agents_registrations (submitted_at, id)
    WHERE status = 'submitted';

-- Where an agent works: a city, optionally one locality of it ('' = the whole city). The
-- ``*_key`` columns are the trimmed, case-folded forms that matching uses; the others are
-- shown as typed.
CREATE TABLE agents_territories (
    agent_id        uuid        NOT NULL REFERENCES agents_agents (id) ON DELETE CASCADE,
    city            text        NOT NULL,
    locality        text        NOT NULL DEFAULT '',
    city_key        text        NOT NULL,
    locality_key    text        NOT NULL DEFAULT '',
    PRIMARY KEY (agent_id, city_key, locality_key)
);
-- Routing: agents of a city (and locality).
CREATE INDEX agents_territories_place_idx ON agents_territories (city_key, locality_key);

-- Holidays: inclusive date ranges during which the agent takes no leads.
CREATE TABLE agents_holidays (
    id              uuid        PRIMARY KEY,
    agent_id        uuid        NOT NULL REFERENCES agents_agents (id) ON DELETE CASCADE,
    starts_on       date        NOT NULL,
    ends_on         date        NOT NULL,
    note            text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    CHECK (ends_on >= starts_on)
);
CREATE INDEX agents_holidays_agent_idx ON agents_holidays (agent_id, starts_on);

-- The projects an agent sells: requested by the agent, accepted or rejected by the project's
-- builder or staff. A rejected listing may be requested again (the same row).
CREATE TABLE agents_listings (
    id              uuid        PRIMARY KEY,
    agent_id        uuid        NOT NULL REFERENCES agents_agents (id) ON DELETE CASCADE,
    project_id      uuid        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('requested', 'accepted', 'rejected')),
    reason          text,
    requested_at    timestamptz NOT NULL,
    decided_at      timestamptz,
    decided_by      text,
    CONSTRAINT agents_listings_agent_project_key UNIQUE (agent_id, project_id)
);
-- A project's listings for its builder (newest request first, optionally of one status);
-- routing's accepted listings of a project.
CREATE INDEX agents_listings_project_idx ON agents_listings (project_id, requested_at DESC, id DESC);
CREATE INDEX agents_listings_status_idx ON agents_listings (project_id, status);

-- Every status change of an agent (and every staff suspension or reinstatement), with who
-- made it and why.
CREATE TABLE agents_history (
    id              uuid        PRIMARY KEY,    -- UUIDv7: orders an agent's history
    agent_id        uuid        NOT NULL REFERENCES agents_agents (id) ON DELETE CASCADE,
    old_status      text,
    new_status      text        NOT NULL,
    reason          text        NOT NULL,
    note            text,
    actor           text        NOT NULL,
    at              timestamptz NOT NULL
);
CREATE INDEX agents_history_agent_idx ON agents_history (agent_id, id);
