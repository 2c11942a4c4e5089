"""A live Propmubi web server on loopback for the contract tests.

The application (the installed plugins: auth and the catalogue, on a fresh clone of the test
database, real PostgreSQL and Redis) runs in a thread with its own event loop, so tests drive it
over real HTTP with a blocking client. It is seeded with a builder (a user holding the builder
role, verified, with a builder profile and an access token) and one draft project.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from aiohttp import web

from propmubi.actors import Actor
from propmubi.app import create_app
from propmubi.ids import uuid7
from propmubi.plugins import load_plugins
from propmubi.testing import TestServers, create_database, drop_database, make_config
from propmubi.types import Principal
from propmubi.web.appkeys import SERVICES
from tests.plugins.auth.conftest import AUTH_SETTINGS


@attrs.frozen
class LiveServer:
    """The running server and what was seeded in it."""

    base_url: str  # ends with /api/v1
    token: str  # a builder's access token
    project_id: uuid.UUID


async def _seed(app: web.Application) -> tuple[str, uuid.UUID]:
    from propmubi_plugins.auth import store as auth_store
    from propmubi_plugins.catalog import models, service, store

    services = app[SERVICES]
    async with services.db.transaction() as tx:
        user_id, _ = await auth_store.upsert_user(tx, uuid7(), "+919800000001")
    await auth_store.grant_role(services.db, user_id, "builder")
    async with services.db.transaction() as tx:  # as the catalogue's KYC handler records it
        await store.record_builder_kyc(tx, user_id, "verified", 1)
    roles = ("buyer", "builder")
    token, _ = services.context("auth").state.keyring.issue(str(user_id), roles, None)
    actor = Actor.user(Principal(subject=str(user_id), roles=frozenset(roles)))
    catalog = services.context("catalog")
    await service.create_builder(catalog, actor, models.BuilderIn(name="Contract Builders"))
    project = await service.create_project(catalog, actor, models.ProjectIn(
        name="Contract Towers", city="Pune", locality="Baner", lat=18.56, lng=73.78))
    return token, project["id"]


@pytest.fixture(scope="module")
def live_server(test_servers: TestServers, template_database: str) -> Iterator[LiveServer]:
    name = f"propmubi_c_{uuid.uuid4().hex[:12]}"
    url = create_database(test_servers, name, template=template_database)
    # Rate limits off: the contract run sends thousands of requests from one address, and a
    # 429 halfway through would make the outcome depend on the machine's speed.
    config = make_config(url, test_servers.redis_url, f"c{uuid.uuid4().hex[:10]}:",
                         plugins={"settings": {"auth": dict(AUTH_SETTINGS)}},
                         ratelimit={"enabled": False})
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    found: dict[str, Any] = {}

    async def serve() -> None:
        runner = web.AppRunner(create_app(config, load_plugins(config)), access_log=None)
        try:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            token, project_id = await _seed(runner.app)
            found["server"] = LiveServer(f"http://127.0.0.1:{port}/api/v1", token, project_id)
        except BaseException as exc:
            found["error"] = exc
            raise
        finally:
            ready.set()
            if "server" in found:
                await stop.wait()
            await runner.cleanup()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve())
        except BaseException:  # reported to the fixture through `found`
            pass
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="contract-server", daemon=True)
    thread.start()
    try:
        assert ready.wait(60), "the contract server did not start within 60 s"
        if "error" in found:
            raise found["error"]
        yield found["server"]
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        drop_database(test_servers, name)
