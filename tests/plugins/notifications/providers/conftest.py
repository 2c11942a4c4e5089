"""Fixtures of the providers' tests: the loopback simulators (simulators.py) and a real
notifications context whose provider sub-tables point at them.

The providers need no plugin running: these tests enable only the stand-in sign-in plugin, so
the rest of the notifications plugin cannot break them; each factory gets a
``PluginContext`` of the notifications plugin built on the test's real services with the
settings the test gives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from propmubi.context import PluginContext
from propmubi.services import Services
from propmubi.testing import StandInAuth
from propmubi_plugins.notifications.settings import NotificationsSettings
from tests.plugins.notifications.providers.simulators import (
    FcmSimulator,
    ServiceAccount,
    SmtpSimulator,
    TwilioSimulator,
    make_certificate,
)


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [StandInAuth()]


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {"plugins": {"enabled": ["stand_in_auth"]}}


@pytest.fixture
def notifications_ctx(services: Services) -> Callable[..., PluginContext[Any, Any]]:
    """``make(smtp=..., http_sms=..., fcm=..., **sections)``: a notifications context with
    these provider settings (and configuration sections, e.g. ``app={...}``)."""

    def make(**changes: Any) -> PluginContext[Any, Any]:
        sections = {k: changes.pop(k) for k in list(changes) if k in ("app",)}
        config = services.config.evolve(**sections) if sections else services.config
        return PluginContext.create("notifications", NotificationsSettings(**changes),
                                    attrs.evolve(services, config=config))

    return make


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert.pem doubles as the CA file)."""
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def service_account() -> ServiceAccount:
    """A made-up FCM service account (an RSA key pair made for this test run)."""
    return ServiceAccount.generate()


@pytest.fixture
async def smtp_server() -> AsyncIterator[SmtpSimulator]:
    """A plain SMTP server on loopback (no TLS, no AUTH)."""
    async with SmtpSimulator.running() as sim:
        yield sim


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioSimulator]:
    async with TwilioSimulator.running() as sim:
        yield sim


@pytest.fixture
async def fcm(service_account: ServiceAccount) -> AsyncIterator[FcmSimulator]:
    async with FcmSimulator.running(service_account) as sim:
        yield sim
