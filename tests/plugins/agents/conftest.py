"""Fixtures of the agents tests: auth, the catalogue, notifications and agents run together
(agents requires them), with real users, projects and KYC (the catalogue's fixtures, imported
below).

- ``agent_user``: a user holding the agent role (and a token).
- ``onboard(user, **changes)``: ``POST /agents/me`` with a valid body; the answer.
- ``verified_kyc(ctx, user_id)``: record the user's agent KYC as auth's event would (the
  events test drives the real auth KYC through the bus).
- ``active_agent``: an onboarded agent whose KYC and registration are verified.
- ``clock``: a settable clock (``clock.now_is(...)``) that every context of the app reads.
- ``outbox(ctx, type)``: payloads of committed events of a type.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import uuid
from typing import Any

import attrs
import pytest

import propmubi_plugins.agents
import propmubi_plugins.notifications
from propmubi.actors import Actor
from propmubi.ids import uuid7
from propmubi.services import Clock
from propmubi.types import Principal
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.agents import service, store
from propmubi_plugins.agents.state import Ctx
from propmubi_plugins.auth import store as auth_store
from propmubi_plugins.auth.settings import generate_signing_key
from propmubi_plugins.catalog import models as catalog_models
from propmubi_plugins.catalog import service as catalog_service
from propmubi_plugins.catalog import store as catalog_store

#: The auth plugin's settings in these tests (known keys, so tokens can be issued).
AUTH_SETTINGS = {"signing_key": generate_signing_key(),
                 "otp_secret": "test-otp-secret-0123456789abcdef"}


_phones = itertools.count(1)
API = "/api/v1"
ME = f"{API}/agents/me"
STAFF_ACTOR = Actor.system("test")
_sequence = itertools.count(1)


def registration(**changes: Any) -> dict[str, Any]:
    """A valid MahaRERA registration running five years from 2025-01-01 (ends 2029-12-31)."""
    return {"state": "MH", "number": "A51800012345", "valid_from": "2025-01-01",
            "valid_until": "2029-12-31", **changes}


def agent_body(**changes: Any) -> dict[str, Any]:
    return {"display_name": "Asha Kulkarni", "phone": "+919812300001",
            "email": "Asha@Example.com", "languages": ["Marathi", "English", "marathi"],
            "registration": registration(), **changes}


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [propmubi_plugins.agents, propmubi_plugins.notifications]


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    key = base64.b64encode(bytes(range(32))).decode()
    return {"plugins": {"enabled": ["auth", "catalog", "notifications",
                                    "agents"],
                        "settings": {"auth": {**AUTH_SETTINGS, "pii_key_id": "k1",
                                              "pii_key": key}}},
            "ratelimit": {"enabled": False}}


class SettableClock(Clock):
    """The real clock until a test sets the time; then that time."""

    def __init__(self) -> None:
        self.fixed: dt.datetime | None = None

    def now_is(self, day: str, time: str = "06:00") -> None:
        self.fixed = dt.datetime.fromisoformat(f"{day}T{time}+00:00")

    def now(self) -> dt.datetime:
        return self.fixed or super().now()


@pytest.fixture
def clock(client: Any) -> SettableClock:
    """The app's clock, settable; it starts at 2026-03-01 06:00 UTC."""
    settable = SettableClock()
    settable.now_is("2026-03-01")
    client.app[SERVICES].clock = settable
    return settable


@pytest.fixture
def ctx(client: Any, clock: SettableClock) -> Ctx:
    """The agents context of the test client's application."""
    return client.app[SERVICES].context("agents")


@attrs.frozen
class User:
    """A signed-in test user (a real auth user with a token)."""

    id: uuid.UUID
    roles: tuple[str, ...]
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def actor(self) -> Actor:
        return Actor.user(Principal(subject=str(self.id), roles=frozenset(self.roles)))


@pytest.fixture
def make_user(client: Any) -> Any:
    """``await make_user("agent")``: a new auth user with those roles (plus buyer) and a
    token signed by the app's key ring; a builder's KYC is recorded verified in the
    catalogue (as its handler would)."""

    async def make(*roles: str) -> User:
        services = client.app[SERVICES]
        async with services.db.transaction() as tx:
            user_id, _ = await auth_store.upsert_user(tx, uuid7(), f"+9197{next(_phones):08d}")
        for role in roles:
            await auth_store.grant_role(services.db, user_id, role)
        if "builder" in roles:
            async with services.db.transaction() as tx:
                await catalog_store.record_builder_kyc(tx, user_id, "verified", 1)
        all_roles = ("buyer", *roles)
        keyring = services.context("auth").state.keyring
        token, _ = keyring.issue(str(user_id), all_roles, None)
        return User(id=user_id, roles=all_roles, token=token)

    return make


@pytest.fixture
async def agent_user(make_user: Any) -> User:
    return await make_user("agent")


@pytest.fixture
async def staff(make_user: Any) -> User:
    return await make_user("staff")


@pytest.fixture
async def buyer(make_user: Any) -> User:
    return await make_user()


async def _builder(client: Any, make_user: Any, name: str) -> User:
    user = await make_user("builder")
    await catalog_service.create_builder(client.app[SERVICES].context("catalog"), user.actor,
                                         catalog_models.BuilderIn(name=name))
    return user  # type: ignore[no-any-return]


@pytest.fixture
async def builder(client: Any, make_user: Any) -> User:
    """A builder-role user managing "Skyline Developers"."""
    return await _builder(client, make_user, "Skyline Developers")


@pytest.fixture
async def other_builder(client: Any, make_user: Any) -> User:
    return await _builder(client, make_user, "Harbour Homes")


#: A valid project (Baner, Pune).
PROJECT = {"name": "Green Meadows", "city": "Pune", "locality": "Baner",
           "address": "Survey 12, Baner Road", "lat": 18.559, "lng": 73.786,
           "rera_number": "P52100012345", "status": "under_construction",
           "amenities": ["gym"], "description": "2 and 3 BHK homes near the Baner hills."}


@pytest.fixture
def make_project(client: Any, staff: User) -> Any:
    """``await make_project(builder, **fields)``: a published project (staff queue and
    publish it through the catalogue's service); its row."""

    async def make(owner: User, **fields: Any) -> dict[str, Any]:
        catalog = client.app[SERVICES].context("catalog")
        project = await catalog_service.create_project(
            catalog, owner.actor, catalog_models.ProjectIn(**{**PROJECT, **fields}))
        await catalog_service.submit_project(catalog, staff.actor, project["id"])
        await catalog_service.publish_project(catalog, staff.actor, project["id"])
        return project  # type: ignore[no-any-return]

    return make


async def verified_kyc(ctx: Ctx, user_id: Any, status: str = "verified") -> None:
    """Record a user's agent KYC status as the auth event handler does."""
    async with ctx.db.transaction() as tx:
        await service.record_kyc_in(ctx, tx, user_id, status, next(_sequence) + 1000)


async def onboard(client: Any, user: User, status: int = 201, **changes: Any
                  ) -> dict[str, Any]:
    response = await client.post(ME, json=agent_body(**changes), headers=user.headers)
    body = await response.json()
    assert response.status == status, body
    return body  # type: ignore[no-any-return]


@pytest.fixture
async def active_agent(client: Any, ctx: Ctx, agent_user: User) -> dict[str, Any]:
    """An onboarded agent with verified KYC and registration (active)."""
    agent = await onboard(client, agent_user)
    await verified_kyc(ctx, agent_user.id)
    out = await service.verify_registration(ctx, STAFF_ACTOR, uuid.UUID(agent["id"]))
    assert out.status == "active"
    return {**agent, "user": agent_user}


async def outbox(ctx: Any, event_type: str) -> list[dict[str, Any]]:
    """Payloads (plus ``_actor``) of the committed events of one type, oldest first."""
    rows = await ctx.db.fetch(
        "SELECT payload, actor FROM core_outbox WHERE type = %s ORDER BY position",
        (event_type,))
    return [{**r["payload"], "_actor": r["actor"]} for r in rows]


async def status_of(ctx: Ctx, agent_id: Any) -> str:
    row = await store.agent(ctx.db, agent_id)
    assert row is not None
    return str(row["status"])
