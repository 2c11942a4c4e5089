"""The events the agents plugin publishes (``propmubi events catalog``).

Lead routing (the CRM plugin) follows agents by consuming these: ``agent_activated``,
``agent_updated`` and ``listing_changed`` carry the whole routing picture of the agent
(:class:`Routing`: status, territories, capacity, holidays, accepted project ids), so a
consumer can keep its own copy from the latest event of each agent (order by the delivery's
``sequence``: every event here has the agent as its aggregate). ``agent_suspended`` says the
agent stopped being active (and why). Personal data (phone, e-mail) is never in an event.
"""

from __future__ import annotations

import datetime as dt
import uuid

import attrs

from propmubi.events import event


@attrs.frozen
class Place:
    """A territory: ``city`` and ``locality`` as typed (locality None: the whole city), and
    ``city_key`` / ``locality_key``, their trimmed case-folded forms for matching."""

    city: str
    locality: str | None
    city_key: str
    locality_key: str | None


@attrs.frozen
class Holiday:
    """A holiday, both days included (UTC dates)."""

    starts_on: dt.date
    ends_on: dt.date


@attrs.frozen
class Routing:
    """What lead routing needs of an agent, as of the event.

    :ivar active: the agent may receive leads at all (status ``active``).
    :ivar capacity: the most open leads at once (0: none).
    :ivar listed_project_ids: the projects whose listing is accepted (they are active only
        while the agent is).
    :ivar holidays: holidays that have not ended yet.
    """

    status: str
    active: bool
    capacity: int
    territories: list[Place]
    listed_project_ids: list[uuid.UUID]
    holidays: list[Holiday]
    languages: list[str]


@event("agents.agent_activated", version=1, aggregate="agent_id")
@attrs.frozen
class AgentActivated:
    """An agent became active: KYC verified, a verified registration in force, not suspended.
    Leads may be routed to them from now on."""

    agent_id: uuid.UUID
    user_id: uuid.UUID
    routing: Routing


@event("agents.agent_suspended", version=1, aggregate="agent_id")
@attrs.frozen
class AgentSuspended:
    """An active agent stopped being active; route them no more leads. ``reason``: ``kyc``
    (their KYC is no longer verified; status pending), ``registration_lapsed`` (status
    lapsed) or ``staff`` (suspended by staff). ``status`` is the new status."""

    agent_id: uuid.UUID
    user_id: uuid.UUID
    reason: str
    status: str


@event("agents.agent_updated", version=1, aggregate="agent_id")
@attrs.frozen
class AgentUpdated:
    """An agent's territories, capacity, languages or holidays changed (by the agent or
    staff); ``routing`` is the whole new picture."""

    agent_id: uuid.UUID
    user_id: uuid.UUID
    fields: list[str]
    routing: Routing


@event("agents.listing_changed", version=1, aggregate="agent_id")
@attrs.frozen
class ListingChanged:
    """A listing was requested, accepted or rejected (``status``); ``routing`` carries the
    agent's accepted project ids after the change."""

    agent_id: uuid.UUID
    user_id: uuid.UUID
    listing_id: uuid.UUID
    project_id: uuid.UUID
    status: str
    routing: Routing


@event("agents.registration_expiring", version=1, aggregate="agent_id")
@attrs.frozen
class RegistrationExpiring:
    """An agent's verified registration ends within the notice period (90 days by default):
    published once per registration by the daily job, so the agent can renew it."""

    agent_id: uuid.UUID
    user_id: uuid.UUID
    registration_id: uuid.UUID
    number: str
    state: str
    valid_until: dt.date


#: Every event type of the plugin (``propmubi_event_types``).
EVENT_TYPES: tuple[type, ...] = (AgentActivated, AgentSuspended, AgentUpdated, ListingChanged,
                                 RegistrationExpiring)
