"""Fixtures for the console's browser tests: the real application on 127.0.0.1 and a headless
Debian chromium driven by playwright.

Chromium comes from Debian (``apt-get install chromium``, done by ``scripts/test-system-deps``),
never from ``playwright install``. Without chromium or playwright these tests FAIL, saying what
to install; ``PROPMUBI_SKIP_BROWSER=1`` turns that into a skip, for machines that cannot run a
browser.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn

import attrs
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from propmubi.app import create_app
from propmubi.config import Config
from propmubi.console import accounts
from propmubi.plugins import PluginSet
from propmubi.web.appkeys import SERVICES

CHROMIUM = "/usr/bin/chromium"
#: Headless, and nothing that talks to the network behind the test's back.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SKIP_ENV = "PROPMUBI_SKIP_BROWSER"
PASSWORD = "correct horse battery"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@attrs.frozen
class Account:
    email: str
    name: str
    password: str = PASSWORD


@attrs.frozen
class Console:
    """The served application: its base URL and the accounts that exist in it."""

    url: str
    staff: Account
    admin: Account

    def at(self, path: str) -> str:
        return self.url + path


def _unavailable(why: str) -> NoReturn:
    message = (f"{why}. The console's browser tests need Debian's chromium at {CHROMIUM} and "
               f"playwright (the 'test' extra): run scripts/test-system-deps as root (or "
               f"apt-get install chromium) and .venv/bin/pip install -e '.[test]'; never "
               f"`playwright install`. Set {SKIP_ENV}=1 to skip these tests instead.")
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: {why}")
    pytest.fail(message, pytrace=False)


def _playwright() -> Any:
    """playwright's ``async_playwright``, once chromium and playwright are known to be there."""
    if not Path(CHROMIUM).is_file() or not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        _unavailable(f"playwright cannot be imported ({exc})")
    return async_playwright


@pytest_asyncio.fixture(loop_scope="session")
async def console(migrated: Config, plugins: PluginSet) -> AsyncIterator[Console]:
    """The real application (every plugin, middleware and service of the test configuration)
    on an ephemeral port of 127.0.0.1, with a staff and an admin account; served from the
    session's event loop, where the browser lives."""
    app = create_app(migrated, plugins)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        services = app[SERVICES]
        staff = Account("sam@example.com", "Sam Staff")
        admin = Account("ada@example.com", "Ada Admin")
        await accounts.create_staff(services.db, staff.email, staff.name, staff.password,
                                    ["staff"])
        await accounts.create_staff(services.db, admin.email, admin.name, admin.password,
                                    ["admin"])
        yield Console(str(server.make_url("")).rstrip("/"), staff, admin)
        keys = [k async for k in services.redis.scan_iter(match=services.keys.pattern())]
        if keys:
            await services.redis.delete(*keys)
    finally:
        await server.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Any]:
    """One headless chromium for the session (each test gets its own context in it)."""
    async_playwright = _playwright()
    async with async_playwright() as playwright:
        # A fresh --user-data-dir: playwright's launch() makes and removes a temporary profile.
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser(chromium: Any) -> AsyncIterator[Any]:
    """A fresh browser context for this test: its own cookies, cache and storage."""
    context = await chromium.new_context(viewport={"width": 1280, "height": 800},
                                         locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Any) -> Any:
    """A tab in the test's browser context."""
    return await browser.new_page()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the tests save the console's screenshots (overwritten every run)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
