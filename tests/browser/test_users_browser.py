"""Another user's console page in a real headless browser: it shows that user (not the staff
member signed in), and an admin grants and revokes their roles and ends one of their sessions
from it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import propmubi_plugins.auth
from propmubi.config import Config
from propmubi.ids import uuid7
from propmubi.lifecycle import open_services
from propmubi.plugins import PluginSet
from propmubi_plugins.auth import store
from tests.browser.conftest import Console
from tests.browser.test_console_browser import sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def extra_plugins(extra_plugins: list[Any]) -> list[Any]:
    return [*extra_plugins, propmubi_plugins.auth]


async def roles_of(services: Any, user_id: uuid.UUID) -> list[str]:
    return await store.roles_of(services.db, user_id)


async def session_states(page: Any) -> dict[str, str]:
    """Device -> the State cell of each row of the page's Sessions table."""
    table = page.locator("section.card", has=page.locator("h2", has_text="Sessions"))
    states = {}
    for row in await table.locator("tbody tr").all():
        cells = [c.strip() for c in await row.locator("td").all_inner_texts()]
        states[cells[0]] = cells[3]
    return states


async def test_an_admin_manages_another_user_from_their_page(
        page: Any, console: Console, migrated: Config, plugins: PluginSet):
    async with open_services(migrated, plugins) as services:
        phone, pixel, laptop = "+919876500001", uuid7(), uuid7()
        async with services.db.transaction() as tx:
            user_id, _ = await store.upsert_user(tx, uuid7(), phone)
            await store.set_name(tx, user_id, "Asha Rao")
            await store.grant_role(tx, user_id, "agent")
            await store.create_session(tx, pixel, user_id, "Pixel 8")
            await store.create_session(tx, laptop, user_id, "Firefox on Linux")

        path = f"/console/users/{user_id}"
        await page.goto(console.at(path))
        await sign_in(page, console, console.admin)
        assert page.url == console.at(path)
        # The page is Asha's, not the signed-in admin's.
        assert await page.inner_text("h1") == "Asha Rao"
        profile = await page.locator("main section.card").first.inner_text()
        assert phone in profile and str(user_id) in profile and "Asha Rao" in profile
        assert console.admin.name not in profile
        assert await session_states(page) == {"Pixel 8": "live", "Firefox on Linux": "live"}

        # Grant a role, then revoke one: both post to Asha's id.
        await page.select_option("#role", "builder")
        async with page.expect_navigation():
            await page.click("button[name=action][value=grant]")
        assert page.url == console.at(path)
        assert await roles_of(services, user_id) == ["agent", "builder", "buyer"]
        await page.select_option("#role", "agent")
        async with page.expect_navigation():
            await page.click("button[name=action][value=revoke]")
        assert await roles_of(services, user_id) == ["builder", "buyer"]
        assert "builder" in await page.inner_text("main")

        # End the phone's session; the laptop's stays.
        row = page.locator("tr", has=page.locator("td", has_text="Pixel 8"))
        async with page.expect_navigation():
            await row.locator("button:has-text('Revoke')").click()
        assert page.url == console.at(path)
        states = await session_states(page)
        assert states["Firefox on Linux"] == "live"
        assert states["Pixel 8"].startswith("revoked")
        revoked = await services.db.fetchval(
            "SELECT revoked_at IS NOT NULL FROM auth_sessions WHERE id = %s", (pixel,))
        still = await services.db.fetchval(
            "SELECT revoked_at IS NULL FROM auth_sessions WHERE id = %s", (laptop,))
        assert revoked and still
