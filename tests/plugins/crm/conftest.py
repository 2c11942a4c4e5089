"""Fixtures of the CRM tests: a published project (Baner, Pune) with two units, real auth users
(the catalogue's fixtures, imported below), advisors in the CRM's routing copy, the CRM
context of the test application, a clock the test moves, and helpers.

The plugin runs with what it requires (auth, catalogue, agents, notifications with its console
providers) and nothing else (a sign-in code would go out through those console providers;
these tests sign users in with tokens). Advisors are made through the CRM's own service
(``add_agent``), as its event handlers make them; the event tests publish the agents plugin's
real events on the bus instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable
from typing import Any

import pytest

from propmubi.actors import Actor
from propmubi.services import Clock
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.crm import service
from propmubi_plugins.crm.state import Ctx
from tests.plugins.auth.conftest import AUTH_SETTINGS
from tests.plugins.catalog.conftest import (  # noqa: F401  (fixtures)
    admin,
    builder,
    buyer,
    make_project,
    make_user,
    other_builder,
    staff,
)

API = "/api/v1"
ENQUIRIES = f"{API}/enquiries"
LEADS = f"{API}/crm/leads"
PARTNER_KEY = "partner-secret-key-0123456789"
SYSTEM = Actor.system("test")
#: Monday 2 June 2025, 10:00 in Kolkata (04:30 UTC): the start of a business day.
MONDAY_10 = dt.datetime(2025, 6, 2, 4, 30, tzinfo=dt.UTC)


def crm_settings() -> dict[str, Any]:
    digest = hashlib.sha256(PARTNER_KEY.encode()).hexdigest()
    return {"partner_keys": [f"acme:{digest}"], "enquiry_per_phone": "1000/hour",
            "enquiry_per_ip": "1000/hour"}


@pytest.fixture
def crm_overrides() -> dict[str, Any]:
    """Changes to ``[plugins.crm]`` for a test module or test."""
    return {}


@pytest.fixture
def config_overrides(crm_overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"plugins": {"enabled": ["auth", "catalog", "agents", "notifications", "crm"],
                        "settings": {"auth": AUTH_SETTINGS,
                                     "crm": {**crm_settings(), **crm_overrides}}},
            "ratelimit": {"enabled": False}}


class MovableClock(Clock):
    """A clock the test sets and moves."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at

    def move(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


@pytest.fixture
def ctx(client: Any) -> Ctx:
    """The CRM context of the test client's application."""
    return client.app[SERVICES].context("crm")


@pytest.fixture
def clock(client: Any) -> MovableClock:
    """The application's clock, stopped at :data:`MONDAY_10` until the test moves it."""
    moved = MovableClock(MONDAY_10)
    client.app[SERVICES].clock = moved
    return moved


@pytest.fixture
async def project(builder: Any, make_project: Any) -> dict[str, Any]:  # noqa: F811
    """A published project (Baner, Pune) with units A-101 and A-201."""
    return await make_project(builder, moderation="published")


async def add_agent(ctx: Ctx, *, user_id: uuid.UUID | None = None,
                    territories: Iterable[tuple[str, str]] = (("Pune", ""),),
                    capacity: int = 10, projects: Iterable[Any] = (),
                    holidays: Iterable[tuple[dt.date, dt.date]] = (), active: bool = True,
                    name: str = "") -> uuid.UUID:
    """An advisor in the CRM's routing copy (as its event handlers would make one)."""
    agent_id = uuid.uuid4()
    async with ctx.db.transaction() as tx:
        await service.sync_agent_in(ctx, tx, SYSTEM, agent_id, {
            "user_id": user_id, "name": name, "active": active, "capacity": capacity,
            "territories": list(territories), "holidays": list(holidays),
            "projects": [uuid.UUID(str(p)) for p in projects]})
    return agent_id


def enquiry(project: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A valid enquiry body for the project."""
    body = {"project_id": str(project["id"]), "name": "Asha Rao", "phone": "98765 43210",
            "message": "Is the 2 BHK still available?", "source": "website"}
    body.update(changes)
    return body


async def send(client: Any, user: Any, body: dict[str, Any], status: int = 202
               ) -> dict[str, Any]:
    """``POST /enquiries`` as ``user``; the answer (asserting its status)."""
    response = await client.post(ENQUIRIES, json=body, headers=user.headers)
    answer = await response.json()
    assert response.status == status, answer
    return answer


async def outbox(ctx: Any, event_type: str) -> list[dict[str, Any]]:
    """Payloads (plus ``_actor``) of the committed events of one type, oldest first."""
    rows = await ctx.db.fetch(
        "SELECT payload, actor FROM core_outbox WHERE type = %s ORDER BY position",
        (event_type,))
    return [{**r["payload"], "_actor": r["actor"]} for r in rows]
