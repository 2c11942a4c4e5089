"""The core's role guard (``roles=`` on a route), with a stand-in authentication middleware:
the core must not need the auth plugin to enforce roles."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

import tests.refplugin
from propmubi import hookimpl
from propmubi.types import PluginInfo
from propmubi.web.appkeys import AUTH_ERROR, PRINCIPAL
from propmubi.web.auth import ANY_ROLE, Principal
from propmubi.web.routing import Routes

routes = Routes()


@routes.get("/guarded/staff", roles=["staff"])
async def staff_only(request: web.Request) -> dict[str, Any]:
    return {"subject": request[PRINCIPAL].subject}


@routes.get("/guarded/anyone", roles=[ANY_ROLE])
async def anyone(request: web.Request) -> dict[str, Any]:
    return {"roles": sorted(request[PRINCIPAL].roles)}


class GuardPlugin:
    """Roles come from a test header; a header value of ``bad`` is a refused credential."""

    @hookimpl
    def propmubi_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="guarded")

    @hookimpl
    def propmubi_api_routes(self, config: Any) -> Routes:
        return routes

    @hookimpl
    def propmubi_middlewares(self, config: Any) -> list[Any]:
        @web.middleware
        async def identify(request: web.Request, handler: Any) -> web.StreamResponse:
            value = request.headers.get("X-Roles")
            if value == "bad":
                request[AUTH_ERROR] = "bad signature"
            elif value is not None:
                request[PRINCIPAL] = Principal("u1", [r for r in value.split(",") if r])
            return await handler(request)

        return [identify]


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [tests.refplugin, GuardPlugin()]


@pytest.mark.parametrize("header, status, challenge", [
    (None, 401, "Bearer"),
    ("bad", 401, 'Bearer error="invalid_token", error_description="bad signature"'),
    ("buyer", 403, 'Bearer error="insufficient_scope"'),
    ("staff", 200, None),
    ("buyer,admin", 200, None),
])
async def test_roles_on_a_route(client, header, status, challenge):
    headers = {"X-Roles": header} if header is not None else {}
    response = await client.get("/api/v1/guarded/staff", headers=headers)
    assert response.status == status
    assert response.headers.get("WWW-Authenticate") == challenge


async def test_any_role_admits_every_signed_in_caller(client):
    assert (await client.get("/api/v1/guarded/anyone")).status == 401
    response = await client.get("/api/v1/guarded/anyone", headers={"X-Roles": ""})
    assert response.status == 200 and (await response.json()) == {"roles": []}


def test_roles_must_be_a_non_empty_list():
    for bad in ("staff", []):
        with pytest.raises(TypeError, match="roles="):
            Routes().get("/x", roles=bad)
