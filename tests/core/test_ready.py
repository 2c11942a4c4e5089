"""/ready tells why a check fails to callers on this machine only: an exception's text or the
names of pending migrations are not for anyone on the network."""

from __future__ import annotations

import pytest

import tests.refplugin
from propmubi import migrate
from propmubi.app import create_app
from propmubi.plugins import load_plugins
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
