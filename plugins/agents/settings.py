"""The ``[plugins.agents]`` settings: list page size, a new agent's capacity, and how long
before a registration ends its agent is told (``agents.registration_expiring``)."""

from __future__ import annotations

import attrs
from attrs import validators as v


@attrs.frozen
class AgentsSettings:
    """How the agents plugin behaves."""

    #: Items per page when a caller asks for no particular number.
    page_size: int = attrs.field(default=20, validator=[v.ge(1), v.le(100)])
    #: The open leads a new agent takes at once until they or staff change it.
    default_capacity: int = attrs.field(default=10, validator=[v.ge(0), v.le(1000)])
    #: Days before a registration's last day that ``registration_expiring`` is published
    #: (and the console's "expiring" queue looks ahead).
    expiry_notice_days: int = attrs.field(default=90, validator=[v.ge(1), v.le(365)])
    #: Holidays (not yet over) one agent may have on record.
    max_holidays: int = attrs.field(default=20, validator=[v.ge(1), v.le(200)])
