"""/ready tells why a check fails to callers on this machine only: an exception's text or the
names of pending migrations are not for anyone on the network. Its checks run at most once a
second, however many callers ask."""

from __future__ import annotations

import asyncio

import pytest

import tests.refplugin
from propmubi import migrate
from propmubi.app import create_app
from propmubi.core_plugin import Check, ReadyCache
from propmubi.plugins import load_plugins
from propmubi.services import Clock
from propmubi.web.appkeys import SERVICES
from tests.core.test_migrate import make_plugin, write


@pytest.fixture
def config_overrides():
    # Behind a trusted proxy, the forwarded address is the caller: a remote one can be sent.
    return {"http": {"trust_forwarded": True}}


@pytest.fixture
async def failing_client(tmp_path, config, aiohttp_client):
    # A plugin whose migration is not applied: the migrations check fails with a detail.
    folder = write(tmp_path / "late", {"0001_late.sql": "CREATE TABLE late_t (id int);"})
    plugins = load_plugins(config, extra=[tests.refplugin, make_plugin("late", folder)])
    return await aiohttp_client(create_app(config, plugins)), plugins


async def ready(client, forwarded=None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    resp = await client.get("/ready", headers=headers)
    return resp.status, await resp.json()


async def test_remote_callers_see_no_details(failing_client):
    client, _ = failing_client
    for remote in ["203.0.113.7", "10.0.0.1, 127.0.0.1, 198.51.100.2", "::ffff:203.0.113.7"]:
        status, body = await ready(client, remote)
        assert status == 503, body
        assert body["status"] == "unavailable"
        assert body["checks"] == {"database": {"ok": True, "detail": ""},
                                  "redis": {"ok": True, "detail": ""},
                                  "migrations": {"ok": False, "detail": ""}}, remote


async def test_loopback_callers_see_the_details(failing_client):
    client, _ = failing_client
    for local in [None, "127.0.0.1", "::1"]:
        status, body = await ready(client, local)
        assert status == 503, body
        detail = body["checks"]["migrations"]["detail"]
        assert "1 pending: late/0001_late.sql" in detail, local
        assert "propmubi migrate up" in detail


async def test_remote_callers_still_see_readiness(failing_client, config):
    client, plugins = failing_client
    await migrate.up(config.database.url, plugins)
    status, body = await ready(client, "203.0.113.7")
    assert status == 200, body
    assert body["status"] == "ok"
    assert all(c == {"ok": True, "detail": ""} for c in body["checks"].values())


class StoppedClock(Clock):
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def monotonic(self) -> float:
        return self.seconds


async def test_ready_reuses_its_checks_for_a_second(failing_client, config):
    client, plugins = failing_client
    clock = client.app[SERVICES].clock = StoppedClock()
    status, body = await ready(client, "203.0.113.7")
    assert status == 503, body
    await migrate.up(config.database.url, plugins)
    # Within the second, every caller gets the round already run, whoever asks.
    clock.seconds += 0.9
    for caller in ["203.0.113.7", None]:
        status, body = await ready(client, caller)
        assert status == 503, body
    assert "late/0001_late.sql" in body["checks"]["migrations"]["detail"]
    clock.seconds += 0.1
    status, body = await ready(client, "203.0.113.7")
    assert status == 200, body


async def test_concurrent_callers_share_one_round_of_checks():
    rounds = 0
    release = asyncio.Event()

    async def run():
        nonlocal rounds
        rounds += 1
        await release.wait()
        return {"database": Check(ok=True)}

    cache = ReadyCache(1.0)
    callers = [asyncio.create_task(cache.get(run, 50.0)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*callers)
    assert rounds == 1
    assert all(r == {"database": Check(ok=True)} for r in results)
    assert await cache.get(run, 50.99) == results[0]
    assert rounds == 1
    await cache.get(run, 51.0)
    assert rounds == 2
