"""The KYC review queue in a real headless browser: a reviewer approves a KYC, the event
consumer counts it, and the dashboard's "KYC decisions today" card shows it. Saves
docs/screenshots/console-kyc-queue.png and docs/screenshots/console-dashboard.png."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import pytest

import propmubi_plugins.auth
from propmubi.actors import Actor
from propmubi.config import Config
from propmubi.events.bus import EventBus
from propmubi.ids import uuid7
from propmubi.lifecycle import open_services
from propmubi.plugins import PluginSet
from propmubi_plugins.auth.kyc import service as kyc
from propmubi_plugins.auth.kyc.models import KycSubmissionIn
from tests.browser.conftest import Console
from tests.browser.test_console_browser import sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

PII_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    # One lasting PII key: the served app and this test's own services read the same rows.
    return {"plugins": {"settings": {"auth": {"pii_key_id": "k1", "pii_key": PII_KEY}}}}


@pytest.fixture
def extra_plugins(extra_plugins: list[Any]) -> list[Any]:
    return [*extra_plugins, propmubi_plugins.auth]


async def applicants(services: Any, names: list[str]) -> list[uuid.UUID]:
    """Agents who submitted KYC (through the service, as the API does)."""
    ctx = services.context("auth")
    ids = []
    for n, name in enumerate(names):
        user_id = uuid7()
        await services.db.execute(
            "INSERT INTO auth_users (id, phone) VALUES (%s, %s)", (user_id, f"+9198123456{n:02d}"))
        await services.db.execute(
            "INSERT INTO auth_user_roles (user_id, role) VALUES (%s, 'agent')", (user_id,))
        view = await kyc.submit(ctx, Actor("user", str(user_id), {"agent"}), "agent",
                                KycSubmissionIn(legal_name=name, document_kind="pan",
                                                document_number=f"ABCDE{1234 + n}F",
                                                rera_number=f"A5180001234{n}"))
        assert view.id is not None
        ids.append(view.id)
    return ids


async def test_approve_from_the_queue_reaches_the_dashboard(
        page: Any, console: Console, migrated: Config, plugins: PluginSet, screenshots: Path):
    async with open_services(migrated, plugins) as services:
        assert services.context("auth").state.pii.current_id == "k1"
        first, _ = await applicants(services, ["Asha Rao", "Vikram Iyer"])

        await page.goto(console.at("/console/kyc"))
        await sign_in(page, console, console.staff)
        assert page.url == console.at("/console/kyc")
        assert await page.inner_text("h1") == "KYC review"
        rows = await page.locator("main table tbody tr").all_inner_texts()
        assert [r.split("\t")[0].strip() for r in rows] == ["Asha Rao", "Vikram Iyer"]
        await page.screenshot(path=screenshots / "console-kyc-queue.png", full_page=True)

        async with page.expect_navigation():
            await page.click("text=Asha Rao")
        assert page.url == console.at(f"/console/kyc/{first}")
        assert "XXXXXX234F" in await page.inner_text("main")
        async with page.expect_navigation():
            await page.click("button:has-text('Approve')")
        assert page.url == console.at(f"/console/kyc/{first}")
        assert await page.inner_text("p.flash") == "KYC verified."
        assert await page.inner_text("[data-status]") == "verified"

        # The worker's part: relay the event and run the auth consumer once.
        await EventBus(services).drain()

    await page.goto(console.at("/console/"))
    card = page.locator("section.card[data-widget='auth-kyc-decisions']")
    assert await card.locator("h2").inner_text() == "KYC decisions today"
    assert await card.locator("[data-verified]").inner_text() == "1"
    assert await card.locator("[data-rejected]").inner_text() == "0"
    pending = page.locator("section.card[data-widget='auth-kyc-pending'] [data-count]")
    assert await pending.inner_text() == "1"
    await page.screenshot(path=screenshots / "console-dashboard.png", full_page=True)
