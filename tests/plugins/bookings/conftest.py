"""Fixtures of the bookings tests: a published project with two units, its builder, buyers and
staff as real auth users (the catalogue's fixtures, imported below), the bookings context, and
helpers to read what was committed.

The plugin is loaded explicitly (``extra_plugins``), so these tests run before it is installed
as an entry point too; ``plugins.enabled`` runs it with what it needs (auth, the notifications
plugin auth sends sign-in codes through, the catalogue) and nothing else, so no other plugin
reacts to its events here.
"""

from __future__ import annotations

from typing import Any

import pytest

import propmubi_plugins.bookings
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.bookings.state import Ctx
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
HOLDS = f"{API}/holds"
BOOKINGS = f"{API}/bookings"


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [propmubi_plugins.bookings]


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {"plugins": {"enabled": ["auth", "notifications", "catalog", "bookings"],
                        "settings": {"auth": dict(AUTH_SETTINGS)}},
            "ratelimit": {"enabled": False}}


@pytest.fixture
def ctx(client: Any) -> Ctx:
    """The bookings context of the test client's application."""
    return client.app[SERVICES].context("bookings")


@pytest.fixture
async def project(builder: Any, make_project: Any) -> dict[str, Any]:  # noqa: F811
    """A published project (Pune, by "Skyline Developers") with units A-101 (85 lakh rupees)
    and A-201 (90 lakh rupees)."""
    return await make_project(builder, moderation="published")


@pytest.fixture
async def units(client: Any, project: dict[str, Any]) -> dict[str, str]:
    """The project's unit ids by code."""
    response = await client.get(f"{API}/projects/{project['id']}/units")
    assert response.status == 200
    return {u["code"]: u["id"] for u in (await response.json())["items"]}


async def hold(client: Any, user: Any, unit_id: str, status: int = 201) -> dict[str, Any]:
    """``POST /holds`` as ``user``; the answer (asserting its status)."""
    response = await client.post(HOLDS, json={"unit_id": unit_id}, headers=user.headers)
    body = await response.json()
    assert response.status == status, body
    return body


async def unit_status(client: Any, unit_id: str) -> str:
    """The catalogue's status of a unit."""
    response = await client.get(f"{API}/units/{unit_id}")
    return (await response.json())["status"]


async def outbox(ctx: Any, event_type: str) -> list[dict[str, Any]]:
    """Payloads (plus ``_actor``) of the committed events of one type, oldest first."""
    rows = await ctx.db.fetch(
        "SELECT payload, actor FROM core_outbox WHERE type = %s ORDER BY position",
        (event_type,))
    return [{**r["payload"], "_actor": r["actor"]} for r in rows]


async def history(ctx: Any, booking_id: Any) -> list[tuple[str | None, str]]:
    """A booking's transitions, oldest first."""
    rows = await ctx.db.fetch(
        "SELECT from_status, to_status FROM bookings_history WHERE booking_id = %s ORDER BY id",
        (booking_id,))
    return [(r["from_status"], r["to_status"]) for r in rows]


async def run_out(ctx: Any, booking_id: Any) -> None:
    """Move a booking's expiry a second into the past (its hold ran out; nobody noticed)."""
    await ctx.db.execute("UPDATE bookings_bookings SET expires_at = now() - interval '1 second'"
                         " WHERE id = %s", (booking_id,))
