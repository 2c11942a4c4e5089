"""Fixtures for catalogue tests (reusable by every catalogue part: media, search, ...).

- ``make_user(*roles, kyc="verified")``: a real auth user holding ``roles`` (plus buyer) and
  a valid access token signed by the app's key ring; returns :class:`User` (``.id``,
  ``.headers``). A builder's KYC status is recorded as the catalogue's KYC handler would
  (``kyc=None``: the catalogue never heard of it, the builder is not verified).
- ``builder``, ``other_builder``, ``staff``, ``admin``, ``buyer``: such users, ready made
  (the two builders already have builder profiles, ``.builder_id``).
- ``make_project(owner, ...)``: a project with towers, units and a photo created through the
  catalogue's service (so derived columns and events are real), optionally submitted or
  published; returns the project row (``service.project``'s dict).
- ``catalog_ctx(client)``: the catalogue's context in the test client's application (direct
  service calls then use the app's own state: its storage backend, its Redis).
- ``outbox(services, type)``: the payloads of committed events of a type, oldest first.

Rate limits are off (tests sign many requests from one address) and the auth plugin runs with
known keys (``tests.plugins.auth.conftest.AUTH_SETTINGS``).
"""

from __future__ import annotations

import io
import itertools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
from PIL import Image

import tests.refplugin
from propmubi.actors import Actor
from propmubi.ids import uuid7
from propmubi.types import Principal
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.auth import store as auth_store
from propmubi_plugins.catalog import models, service, store
from propmubi_plugins.catalog.media import service as media_service
from propmubi_plugins.catalog.media.models import PhotoUpload
from propmubi_plugins.catalog.units import models as units_models
from propmubi_plugins.catalog.units import service as units_service
from tests.plugins.auth.conftest import AUTH_SETTINGS

API = "/api/v1"
_phones = itertools.count(1)


@pytest.fixture
def extra_plugins() -> list[Any]:
    # auth and catalog are installed entry points; the reference plugin as everywhere.
    return [tests.refplugin]


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {"plugins": {"settings": {"auth": dict(AUTH_SETTINGS)}},
            "ratelimit": {"enabled": False}}


@attrs.frozen
class User:
    """A signed-in test user."""

    id: uuid.UUID
    roles: tuple[str, ...]
    token: str
    builder_id: uuid.UUID | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def actor(self) -> Actor:
        """The same user for direct service calls."""
        return Actor.user(Principal(subject=str(self.id), roles=frozenset(self.roles)))


MakeUser = Callable[..., Awaitable[User]]


def catalog_ctx(client: Any) -> Any:
    """The catalogue's context in the test client's application."""
    return client.app[SERVICES].context("catalog")


def issue_token(client: Any, user_id: uuid.UUID, roles: tuple[str, ...]) -> str:
    """An access token for ``user_id`` signed by the app's own auth key ring."""
    keyring = client.app[SERVICES].context("auth").state.keyring
    token, _ = keyring.issue(str(user_id), roles, None)
    return token


@pytest.fixture
def make_user(client: Any) -> MakeUser:
    """``await make_user("builder")``: a new user with those roles and a token."""

    async def make(*roles: str, kyc: str | None = "verified") -> User:
        services = client.app[SERVICES]
        phone = f"+9198{next(_phones):08d}"
        async with services.db.transaction() as tx:
            user_id, _ = await auth_store.upsert_user(tx, uuid7(), phone)
        for role in roles:
            await auth_store.grant_role(services.db, user_id, role)
        if "builder" in roles and kyc is not None:
            async with services.db.transaction() as tx:
                await store.record_builder_kyc(tx, user_id, kyc, 1)
        all_roles = ("buyer", *roles)
        return User(id=user_id, roles=all_roles, token=issue_token(client, user_id, all_roles))

    return make


async def _with_builder(client: Any, user: User, name: str) -> User:
    row = await service.create_builder(catalog_ctx(client), user.actor,
                                       models.BuilderIn(name=name))
    return attrs.evolve(user, builder_id=row["id"])


@pytest.fixture
async def builder(client: Any, make_user: MakeUser) -> User:
    """A builder-role user with a builder profile ("Skyline Developers")."""
    return await _with_builder(client, await make_user("builder"), "Skyline Developers")


@pytest.fixture
async def other_builder(client: Any, make_user: MakeUser) -> User:
    """Another builder with a profile ("Harbour Homes")."""
    return await _with_builder(client, await make_user("builder"), "Harbour Homes")


@pytest.fixture
async def staff(make_user: MakeUser) -> User:
    return await make_user("staff")


@pytest.fixture
async def admin(make_user: MakeUser) -> User:
    return await make_user("admin")


@pytest.fixture
async def buyer(make_user: MakeUser) -> User:
    return await make_user()


#: A valid project body (Baner, Pune).
PROJECT = {"name": "Green Meadows", "city": "Pune", "locality": "Baner",
           "address": "Survey 12, Baner Road", "lat": 18.559, "lng": 73.786,
           "rera_number": "P52100012345", "status": "under_construction",
           "possession_date": "2028-06-30", "amenities": ["gym", "swimming_pool"],
           "description": "2 and 3 BHK homes near the Baner hills."}


def unit_body(code: str = "A-101", **changes: Any) -> dict[str, Any]:
    """A valid unit body (a 2BHK on floor 1 for 85 lakh rupees)."""
    body = {"code": code, "unit_type": "2BHK", "bedrooms": 2, "carpet_area_sqft": 720.5,
            "super_area_sqft": 1010, "floor": 1, "facing": "E",
            "price_minor": 85_00_000_00, "currency": "INR", "status": "available"}
    body.update(changes)
    return body


def tiny_jpeg() -> bytes:
    """A small valid JPEG (a project's photo)."""
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (46, 125, 50)).save(out, "JPEG")
    return out.getvalue()


async def complete_project(client: Any, owner: User, project_id: Any) -> None:
    """Give a project what a review needs (through the service): tower A, a unit, a photo."""
    ctx = catalog_ctx(client)
    tower = await units_service.create_tower(ctx, owner.actor, uuid.UUID(str(project_id)),
                                             units_models.TowerIn(name="A", floors=10))
    await units_service.create_unit(ctx, owner.actor, tower["id"],
                                    units_models.UnitIn(**unit_body("A-101")))
    access = await media_service.manage_access(ctx, owner.actor,
                                               project_id=uuid.UUID(str(project_id)))
    await media_service.upload(ctx, owner.actor, access,
                               PhotoUpload(data=tiny_jpeg(), alt_text="The entrance"))


@pytest.fixture
def make_project(client: Any, staff: User) -> Callable[..., Awaitable[dict[str, Any]]]:
    """``await make_project(owner, moderation="published", towers={"A": 10},
    units=[("A", unit_body(...)), ...], photos=True)``: a project built through the service
    (with a photo when it is submitted, unless ``photos=False``; staff submit a project
    left incomplete)."""

    async def make(owner: User, *, moderation: str = "draft", towers: dict[str, int] | None = None,
                   units: list[tuple[str, dict[str, Any]]] | None = None,
                   photos: bool | None = None, **fields: Any) -> dict[str, Any]:
        ctx = catalog_ctx(client)
        data = models.ProjectIn(**{**PROJECT, "possession_date": None, **fields})
        project = await service.create_project(ctx, owner.actor, data)
        tower_ids = {}
        for name, floors in (towers if towers is not None else {"A": 10}).items():
            tower = await units_service.create_tower(
                ctx, owner.actor, project["id"], units_models.TowerIn(name=name, floors=floors))
            tower_ids[name] = tower["id"]
        if photos or (photos is None and moderation != "draft"):  # a review needs a photo
            access = await media_service.manage_access(ctx, owner.actor, project_id=project["id"])
            await media_service.upload(ctx, owner.actor, access,
                                       PhotoUpload(data=tiny_jpeg(), alt_text="The entrance"))
        default_units = [("A", unit_body("A-101")),
                         ("A", unit_body("A-201", floor=2, price_minor=90_00_000_00))]
        for tower_name, body in (units if units is not None else
                                 default_units if "A" in tower_ids else []):
            await units_service.create_unit(ctx, owner.actor, tower_ids[tower_name],
                                            units_models.UnitIn(**body))
        if moderation in ("in_review", "published", "rejected"):
            # Staff may queue a project that is not complete (no towers, units or photo).
            complete = tower_ids and (units is None or units) and photos is not False
            await service.submit_project(ctx, (owner if complete else staff).actor,
                                         project["id"])
        if moderation == "published":
            await service.publish_project(ctx, staff.actor, project["id"])
        if moderation == "rejected":
            await service.reject_project(ctx, staff.actor, project["id"],
                                         models.ReasonIn(reason="blurry photos"))
        return await service.project(ctx, staff.actor, str(project["id"]))

    return make


async def outbox(services: Any, event_type: str) -> list[dict[str, Any]]:
    """Payloads (plus ``_actor``) of the committed events of one type, oldest first."""
    rows = await services.db.fetch(
        "SELECT payload, actor FROM core_outbox WHERE type = %s ORDER BY position", (event_type,))
    return [{**r["payload"], "_actor": r["actor"]} for r in rows]
