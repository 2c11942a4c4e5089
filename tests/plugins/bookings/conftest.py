"""Fixtures of the bookings plugin's tests.

propmubi.testing's fixtures (``services``, ``client``, ``event_bus``, ``config_overrides``,
...) come from tests/conftest.py.

The plugin is loaded explicitly (``extra_plugins``), so these tests run before it is
installed as an entry point too, and it runs alone (``plugins.enabled``): other plugins'
settings or state cannot break its tests. API callers are signed in by propmubi.testing's
``StandInAuth`` (the ``X-Test-Roles`` header): the plugin relies on the core's ``roles=``
check, not on the auth plugin. A plugin that later ``requires`` others adds them to
``plugins.enabled`` below.
"""

from __future__ import annotations

from typing import Any

import pytest

import propmubi_plugins.bookings
from propmubi.services import Services
from propmubi.testing import ROLES_HEADER, StandInAuth
from propmubi_plugins.bookings.state import Ctx

#: Headers of a staff member's API request.
STAFF = {ROLES_HEADER: "staff"}


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [propmubi_plugins.bookings, StandInAuth()]


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {"plugins": {"enabled": ["bookings", "stand_in_auth"]}}


@pytest.fixture
def ctx(services: Services) -> Ctx:
    """The plugin's started context, for calling its service directly."""
    return services.context("bookings")
