"""Fixtures of the notifications plugin's tests.

The plugin runs with the auth plugin it requires (whose ``auth.user_erased`` it handles), with
``StandInAuth`` (the ``X-Test-Roles`` header signs API callers in) and
:class:`TestProviders`, a test plugin that offers real providers through
``propmubi_notification_providers``: :class:`ScriptedProvider` answers each send as its
script says (accept, a retryable failure, "maybe sent", a refusal, a dead address, a
hang), and keeps what it accepted. It also names users (``propmubi_actor_names``), as the
auth plugin would, so console pages show names.

Time is the test's: ``clock`` replaces the services' clock with :class:`TestClock`, which
stands still until the test moves it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

import propmubi_plugins.auth
import propmubi_plugins.notifications
from propmubi import hookimpl
from propmubi.actors import Actor
from propmubi.services import Clock, Services
from propmubi.testing import ROLES_HEADER, TEST_USER_ID, StandInAuth
from propmubi.types import PluginInfo
from propmubi_plugins.notifications import service
from propmubi_plugins.notifications.models import TemplateIn
from propmubi_plugins.notifications.providers.base import Message, ProviderError, Receipt
from propmubi_plugins.notifications.state import Ctx
from tests.plugins.auth.conftest import AUTH_SETTINGS

#: Headers of a staff member's API request, and of a signed-in user's.
STAFF = {ROLES_HEADER: "staff"}
USER = {ROLES_HEADER: "buyer"}
STAFF_ACTOR = Actor.system("test")
#: Users with names (TestProviders' resolver), the first is StandInAuth's user.
ASHA = uuid.UUID(TEST_USER_ID)
RAVI = uuid.UUID(int=2)
NAMES = {str(ASHA): "Asha Rao", str(RAVI): "Ravi Kumar"}
#: 11:30 in India, 01:00 in New York: a Wednesday.
NOON_IST = dt.datetime(2025, 1, 15, 6, 0, tzinfo=dt.UTC)
DLT_ID = "1107161234567890123"


class TestClock(Clock):
    """A clock that moves only when the test moves it (``monotonic`` moves with it)."""

    __test__ = False

    def __init__(self, now: dt.datetime) -> None:
        self.at = now
        self.start = now

    def now(self) -> dt.datetime:
        return self.at

    def monotonic(self) -> float:
        return 1000.0 + (self.at - self.start).total_seconds()

    def move(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


class ScriptedProvider:
    """A real provider whose answers follow ``script``: each send takes the next step
    (``ok``, ``retryable``, ``maybe``, ``refuse``, ``gone``: a token that no longer exists,
    ``hang``), then ``ok`` forever.

    ``accepted`` keeps what it accepted; ``calls`` every message it was handed.
    """

    def __init__(self, name: str, channel: Any) -> None:
        self.name = name
        self.channel = channel
        self.script: list[str] = []
        self.calls: list[Message] = []
        self.accepted: list[Message] = []
        self.gate: asyncio.Event | None = None
        #: Set when a send starts (a test waits for a worker to be inside the provider).
        self.entered = asyncio.Event()

    async def send(self, message: Message) -> Receipt:
        self.calls.append(message)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        step = self.script.pop(0) if self.script else "ok"
        if step == "retryable":
            raise ProviderError("503 from the provider", retryable=True)
        if step == "maybe":
            raise ProviderError("the connection dropped after the request was sent",
                                retryable=True, maybe_sent=True)
        if step == "refuse":
            raise ProviderError("400: unknown number", retryable=False)
        if step == "gone":
            raise ProviderError(f"404 UNREGISTERED: {message.to} is not registered",
                                retryable=False, address_gone=True)
        if step == "hang":
            await asyncio.sleep(3600)
        self.accepted.append(message)
        return Receipt(provider=self.name, provider_message_id=f"{self.name}-{len(self.calls)}")


class TestProviders:
    """A test plugin offering scripted providers, and users' names."""

    __test__ = False

    @hookimpl
    def propmubi_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="test_providers", description="scripted providers")

    @hookimpl
    def propmubi_notification_providers(self) -> Mapping[str, Any]:
        return {name: (lambda ctx, name=name, channel=channel: ScriptedProvider(name, channel))
                for name, channel in (("first_sms", "sms"), ("second_sms", "sms"),
                                      ("first_push", "push"), ("first_email", "email"))}

    @hookimpl
    def propmubi_actor_names(self) -> Mapping[str, Any]:
        async def users(db: Any, ids: list[str]) -> dict[str, str]:
            return {i: NAMES[i] for i in ids if i in NAMES}

        return {"user": users}


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [propmubi_plugins.auth, propmubi_plugins.notifications, StandInAuth(),
            TestProviders()]


@pytest.fixture
def notifications_settings() -> dict[str, Any]:
    """``[plugins.notifications]`` of the test (console providers by default)."""
    return {}


@pytest.fixture
def config_overrides(notifications_settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"plugins": {"enabled": ["auth", "notifications", "stand_in_auth", "test_providers"],
                        "settings": {"auth": dict(AUTH_SETTINGS),
                                     "notifications": notifications_settings}},
            "ratelimit": {"enabled": False}}


@pytest.fixture
def clock(services: Services) -> TestClock:
    """The services' clock, standing at :data:`NOON_IST` until the test moves it."""
    services.clock = TestClock(NOON_IST)
    return services.clock


@pytest.fixture
def ctx(services: Services, clock: TestClock) -> Ctx:
    """The plugin's started context, for calling its service directly."""
    return services.context("notifications")


def provider(ctx: Ctx, channel: str, index: int = 0) -> Any:
    """The ``index``-th provider of a channel in this process."""
    return ctx.state.providers[channel][index]


async def make_template(ctx: Ctx, **fields: Any) -> Any:
    """A template (``lead_assigned`` on SMS unless told otherwise)."""
    values: dict[str, Any] = {
        "type": "lead_assigned", "channel": "sms", "category": "leads",
        "kind": "transactional", "body": "New lead {#name#} for {#project#}.",
        "variables": ["name", "project"], "dlt_template_id": DLT_ID}
    values.update(fields)
    if values["channel"] != "sms":
        values.setdefault("subject", "New lead")
        if "dlt_template_id" not in fields:
            values["dlt_template_id"] = None
    return await service.create_template(ctx, STAFF_ACTOR, TemplateIn(**values))


async def deliveries(ctx: Ctx) -> list[dict[str, Any]]:
    """Every delivery, oldest first."""
    return await ctx.db.fetch("SELECT * FROM notifications_deliveries ORDER BY created_at, id")


async def attempts(ctx: Ctx) -> list[dict[str, Any]]:
    """Every attempt, in order."""
    return await ctx.db.fetch(
        "SELECT a.*, d.channel FROM notifications_attempts a"
        " JOIN notifications_deliveries d ON d.id = a.delivery_id"
        " ORDER BY a.started_at, a.delivery_id, a.attempt_no")


async def published(ctx: Ctx, type_: str) -> list[dict[str, Any]]:
    """The payloads of the committed events of a type, oldest first."""
    rows = await ctx.db.fetch("SELECT payload FROM core_outbox WHERE type = %s"
                              " ORDER BY position", (type_,))
    return [r["payload"] for r in rows]
