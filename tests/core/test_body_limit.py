"""Per-route body limits (``max_body=``): a route may accept more than ``[http] max_body_bytes``
(its own byte count), or stream its body and bound it itself (False)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from aiohttp import web

import tests.refplugin
from propmubi import hookimpl
from propmubi.types import PluginInfo
from propmubi.web.routing import Routes

PROBLEM = "application/problem+json"
routes = Routes()


@attrs.frozen
class Text:
    text: str


@routes.post("/limits/default", body=Text)
async def default_limit(request: web.Request, body: Text) -> dict[str, int]:
    return {"length": len(body.text)}


@routes.post("/limits/larger", body=Text, max_body=1000)
async def larger_limit(request: web.Request, body: Text) -> dict[str, int]:
    return {"length": len(body.text)}


@routes.post("/limits/streamed", max_body=False)
async def streamed(request: web.Request) -> dict[str, int]:
    # The handler's own bound: it reads at most 2,000 bytes.
    total = 0
    async for chunk in request.content.iter_chunked(256):
        total += len(chunk)
        if total > 2000:
            raise web.HTTPRequestEntityTooLarge(max_size=2000, actual_size=total)
    return {"length": total}


class LimitsPlugin:
    @hookimpl
    def propmubi_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="limits")

    @hookimpl
    def propmubi_api_routes(self, config: Any) -> Routes:
        return routes


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [tests.refplugin, LimitsPlugin()]


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"http": {"max_body_bytes": 100}}


JSON = {"Content-Type": "application/json"}


def body(size: int) -> bytes:
    """A JSON body of exactly ``size`` bytes."""
    return b'{"text":"' + b"x" * (size - len('{"text":""}')) + b'"}'


async def test_default_routes_keep_the_configured_limit(client):
    resp = await client.post("/api/v1/limits/default", headers=JSON, data=body(101))
    assert resp.status == 413
    assert resp.content_type == PROBLEM
    assert (await client.post("/api/v1/limits/default", headers=JSON, data=body(100))).status == 200


async def test_a_route_may_take_larger_bodies_up_to_its_own_limit(client):
    resp = await client.post("/api/v1/limits/larger", headers=JSON, data=body(1000))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["length"] == 1000 - len('{"text":""}')
    resp = await client.post("/api/v1/limits/larger", headers=JSON, data=body(1001))
    assert resp.status == 413
    assert "1000" in (await resp.json(content_type=PROBLEM))["detail"]


async def test_a_chunked_body_is_cut_at_the_routes_own_limit(client):
    async def chunks():
        yield b'{"text":"'
        for _ in range(12):
            yield b"x" * 100
        yield b'"}'

    resp = await client.post("/api/v1/limits/larger", data=chunks(),
                             headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert resp.content_type == PROBLEM


async def test_a_streaming_route_bounds_its_body_itself(client):
    resp = await client.post("/api/v1/limits/streamed", data=b"y" * 1500)
    assert resp.status == 200
    assert (await resp.json())["length"] == 1500
    resp = await client.post("/api/v1/limits/streamed", data=b"y" * 5000)
    assert resp.status == 413
    assert resp.content_type == PROBLEM


@pytest.mark.parametrize("value", [0, -1, True])
def test_nonsense_limits_are_refused_at_declaration(value):
    with pytest.raises(TypeError, match="max_body"):
        Routes().post("/x", max_body=value)
