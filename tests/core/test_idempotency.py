"""Idempotency-Key on routes declared idempotent=True: replay byte for byte, a key reused for
another request, a key in flight, what is stored and what releases the key, per-caller keys,
expiry and the purge job, the header's syntax, the OpenAPI document. Real PostgreSQL, the whole
application, a test plugin whose handlers count their calls in its own state."""

from __future__ import annotations

import asyncio
import collections
import re
from typing import Any

import attrs
import pytest
from aiohttp import web
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

import tests.refplugin
from propmubi import hookimpl
from propmubi.config import ConfigError, load_config
from propmubi.context import PluginContext
from propmubi.errors import Conflict, NotFound, ServiceUnavailable, TooManyRequests
from propmubi.testing import ROLES_HEADER, StandInAuth
from propmubi.types import PluginInfo
from propmubi.web.appkeys import OPENAPI, SERVICES
from propmubi.web.routing import Routes, json_response
from tests.refplugin import TEST_SUBJECT_HEADER

PROBLEM = "application/problem+json"
PROBLEMS = "https://propmubi.dev/problems/"
KEY = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
ORDERS = "/api/v1/idem/orders"
FLAKY = "/api/v1/idem/flaky"
SLOW = "/api/v1/idem/slow"
ORDER = {"item": "tea", "qty": 2}


@attrs.define(eq=False)
class IdemState:
    """What the test routes did: calls per route, and the gates the slow ones wait on."""

    calls: collections.Counter[str] = attrs.Factory(collections.Counter)
    # What /flaky does on its next calls (popped first to last; then it succeeds).
    failures: list[str] = attrs.Factory(list)
    started: asyncio.Event = attrs.Factory(asyncio.Event)
    release: asyncio.Event = attrs.Factory(asyncio.Event)


Ctx = PluginContext[None, IdemState]
routes = Routes(tags=["idem"])


@attrs.frozen
class OrderIn:
    item: str = attrs.field(validator=attrs.validators.min_len(1))
    qty: int = attrs.field(validator=attrs.validators.ge(1))


@attrs.frozen
class ItemId:
    n: int


@routes.post("/idem/orders", body=OrderIn, status=201, idempotent=True)
async def create_order(request: web.Request, ctx: Ctx, body: OrderIn) -> web.Response:
    """Create an order; every run answers with a new number."""
    ctx.state.calls["orders"] += 1
    n = ctx.state.calls["orders"]
    return json_response({"n": n, "item": body.item, "qty": body.qty}, status=201,
                         headers={"Location": f"/api/v1/idem/orders/{n}",
                                  "X-Per-Response": str(n)})


@routes.post("/idem/other", body=OrderIn, status=201, idempotent=True)
async def other(request: web.Request, ctx: Ctx, body: OrderIn) -> dict[str, int]:
    """Another idempotent route."""
    ctx.state.calls["other"] += 1
    return {"n": ctx.state.calls["other"]}


@routes.post("/idem/items/{n}/bump", params=ItemId, idempotent=True)
async def bump(request: web.Request, ctx: Ctx, params: ItemId) -> dict[str, int]:
    """A body-less idempotent route with a path parameter."""
    ctx.state.calls["bump"] += 1
    return {"n": params.n, "run": ctx.state.calls["bump"]}


@routes.post("/idem/flaky", status=201, idempotent=True)
async def flaky(request: web.Request, ctx: Ctx) -> Any:
    """Fails as ``failures`` says, then succeeds."""
    ctx.state.calls["flaky"] += 1
    mode = ctx.state.failures.pop(0) if ctx.state.failures else "ok"
    if mode == "raise":
        raise RuntimeError("boom")
    if mode == "500":
        return web.Response(status=500, text="returned 500")
    problems = {"503": ServiceUnavailable, "429": TooManyRequests, "404": NotFound,
                "409": Conflict}
    if mode in problems:
        raise problems[mode](f"flaky says {mode}")
    if mode == "303":
        raise web.HTTPSeeOther(f"/api/v1/idem/orders/{ctx.state.calls['flaky']}")
    if mode == "204":
        return None
    if mode == "stream":
        streamed = web.StreamResponse(status=200)
        await streamed.prepare(request)
        await streamed.write(b"streamed")
        return streamed
    return json_response({"run": ctx.state.calls["flaky"]}, status=201)


@routes.post("/idem/slow", body=OrderIn, status=201, idempotent=True)
async def slow(request: web.Request, ctx: Ctx, body: OrderIn) -> dict[str, int]:
    """The first call waits for the test to release it; later ones answer at once."""
    ctx.state.calls["slow"] += 1
    run = ctx.state.calls["slow"]
    if run == 1:
        ctx.state.started.set()
        await ctx.state.release.wait()
    return {"run": run}


@routes.post("/idem/stuck", status=201, timeout=0.2, idempotent=True)
async def stuck(request: web.Request, ctx: Ctx) -> dict[str, int]:
    """The first call never finishes (the route's timeout cancels it); later ones answer."""
    ctx.state.calls["stuck"] += 1
    if ctx.state.calls["stuck"] == 1:
        await asyncio.Event().wait()
    return {"run": ctx.state.calls["stuck"]}


@routes.post("/idem/plain", body=OrderIn, status=201)
async def plain(request: web.Request, ctx: Ctx, body: OrderIn) -> dict[str, int]:
    """Not idempotent: the header means nothing here."""
    ctx.state.calls["plain"] += 1
    return {"n": ctx.state.calls["plain"]}


class IdemPlugin:
    """The test plugin: the routes above and their counters."""

    @hookimpl
    def propmubi_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="idem", description="idempotency test routes")

    @hookimpl
    def propmubi_startup(self, ctx: Ctx) -> IdemState:
        return IdemState()

    @hookimpl
    def propmubi_api_routes(self) -> Routes:
        return routes


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [tests.refplugin, StandInAuth(), IdemPlugin()]


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    # These plugins and the core's only: the installed domain plugins play no part here.
    return {"plugins": {"enabled": ["reference", "stand_in_auth", "idem"]}}


def state_of(client: Any) -> IdemState:
    state: IdemState = client.app[SERVICES].contexts["idem"].state
    return state


async def rows(client: Any) -> list[dict[str, Any]]:
    return await client.app[SERVICES].db.fetch(
        "SELECT scope, route, key, state, status FROM core_idempotency_keys ORDER BY created_at")


async def problem(resp: Any, status: int, slug: str) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM
    doc: dict[str, Any] = await resp.json(content_type=PROBLEM)
    assert doc["type"] == PROBLEMS + slug
    return doc


# --- replay ---------------------------------------------------------------------------------


async def test_a_retry_gets_the_first_answer_byte_for_byte(client):
    first = await client.post(ORDERS, json=ORDER, headers={KEY: "order-1"})
    assert first.status == 201
    body = await first.read()
    assert REPLAYED not in first.headers
    assert first.headers["X-Per-Response"] == "1"

    again = await client.post(ORDERS, json=ORDER, headers={KEY: "order-1"})
    assert again.status == 201
    assert await again.read() == body  # the handler would have answered n=2
    assert again.headers[REPLAYED] == "true"
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers["Location"] == first.headers["Location"] == "/api/v1/idem/orders/1"
    # Not a header of the answer: each response has its own.
    assert "X-Per-Response" not in again.headers
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    assert state_of(client).calls["orders"] == 1

    # A new key is a new request.
    other = await client.post(ORDERS, json=ORDER, headers={KEY: "order-2"})
    assert (await other.json())["n"] == 2
    assert [(r["key"], r["state"], r["status"]) for r in await rows(client)] == [
        ("order-1", "done", 201), ("order-2", "done", 201)]


async def test_without_the_header_the_route_runs_every_time(client):
    for n in (1, 2):
        resp = await client.post(ORDERS, json=ORDER)
        assert resp.status == 201 and (await resp.json())["n"] == n
        assert REPLAYED not in resp.headers
    assert await rows(client) == []
    # On a route not declared idempotent the header changes nothing.
    for n in (1, 2):
        resp = await client.post("/api/v1/idem/plain", json=ORDER, headers={KEY: "k"})
        assert (await resp.json())["n"] == n
    assert await rows(client) == []


async def test_a_stored_4xx_of_the_handler_is_replayed(client):
    state = state_of(client)
    state.failures = ["404", "409"]
    first = await client.post(FLAKY, headers={KEY: "nf"})
    doc = await problem(first, 404, "not-found")
    assert doc["detail"] == "flaky says 404"
    again = await client.post(FLAKY, headers={KEY: "nf"})
    assert again.status == 404 and again.headers[REPLAYED] == "true"
    assert await again.read() == await first.read()  # the first request's id included
    conflict = await client.post(FLAKY, headers={KEY: "cf"})
    await problem(conflict, 409, "conflict")
    replayed = await client.post(FLAKY, headers={KEY: "cf"})
    assert replayed.status == 409 and await replayed.read() == await conflict.read()
    assert state.calls["flaky"] == 2


async def test_a_raised_redirect_and_an_empty_answer_are_replayed(client):
    state = state_of(client)
    state.failures = ["303", "204"]
    for key, status in (("see", 303), ("none", 204)):
        first = await client.post(FLAKY, headers={KEY: key}, allow_redirects=False)
        again = await client.post(FLAKY, headers={KEY: key}, allow_redirects=False)
        assert first.status == again.status == status
        assert await again.read() == await first.read()
        assert again.headers.get("Location") == first.headers.get("Location")
        assert again.headers[REPLAYED] == "true"
    assert state.calls["flaky"] == 2


# --- another request under the same key -----------------------------------------------------


async def test_the_same_key_for_another_request_is_refused(client):
    assert (await client.post(ORDERS, json=ORDER, headers={KEY: "k1"})).status == 201
    doc = await problem(await client.post(ORDERS, json={**ORDER, "qty": 3}, headers={KEY: "k1"}),
                        422, "idempotency-key-reused")
    assert "different request" in doc["detail"]
    # The query string counts too.
    await problem(await client.post(ORDERS + "?x=1", json=ORDER, headers={KEY: "k1"}),
                  422, "idempotency-key-reused")
    # So does the path: the same route, another item.
    bump1 = await client.post("/api/v1/idem/items/1/bump", headers={KEY: "b"})
    assert await bump1.json() == {"n": 1, "run": 1}
    await problem(await client.post("/api/v1/idem/items/2/bump", headers={KEY: "b"}),
                  422, "idempotency-key-reused")
    replay = await client.post("/api/v1/idem/items/1/bump", headers={KEY: "b"})
    assert await replay.json() == {"n": 1, "run": 1}
    assert state_of(client).calls == {"orders": 1, "bump": 1}


async def test_keys_belong_to_the_caller_and_the_route(client):
    callers = [{TEST_SUBJECT_HEADER: "alice"}, {TEST_SUBJECT_HEADER: "bob"},
               {ROLES_HEADER: "buyer"}, {}]  # a principal; anonymous (the client address)
    answers = []
    for caller in callers:
        resp = await client.post(ORDERS, json=ORDER, headers={KEY: "same", **caller})
        answers.append((await resp.json())["n"])
    assert answers == [1, 2, 3, 4]
    for caller, n in zip(callers, answers, strict=True):
        resp = await client.post(ORDERS, json=ORDER, headers={KEY: "same", **caller})
        assert (await resp.json())["n"] == n and resp.headers[REPLAYED] == "true"
    scopes = sorted(r["scope"] for r in await rows(client))
    assert scopes == sorted(["subject:alice", "subject:bob",
                             "subject:00000000-0000-0000-0000-000000000001", "ip:127.0.0.1"])
    # The same key on another route is another key.
    resp = await client.post("/api/v1/idem/other", json=ORDER, headers={KEY: "same"})
    assert resp.status == 201 and REPLAYED not in resp.headers
    assert state_of(client).calls == {"orders": 4, "other": 1}


# --- in flight ------------------------------------------------------------------------------


async def test_a_duplicate_while_the_first_runs_gets_409(client):
    state = state_of(client)
    first = asyncio.create_task(client.post(SLOW, json=ORDER, headers={KEY: "slow"}))
    await asyncio.wait_for(state.started.wait(), 10)
    busy = await client.post(SLOW, json=ORDER, headers={KEY: "slow"})
    doc = await problem(busy, 409, "idempotency-key-in-flight")
    assert busy.headers["Retry-After"] == "1"
    assert "in progress" in doc["detail"]
    # Another request under the key is refused as such, in flight too.
    await problem(await client.post(SLOW, json={**ORDER, "qty": 9}, headers={KEY: "slow"}),
                  422, "idempotency-key-reused")
    assert [(r["state"], r["status"]) for r in await rows(client)] == [("running", None)]
    state.release.set()
    done = await asyncio.wait_for(first, 10)
    assert done.status == 201 and await done.json() == {"run": 1}
    replay = await client.post(SLOW, json=ORDER, headers={KEY: "slow"})
    assert await replay.json() == {"run": 1} and replay.headers[REPLAYED] == "true"
    assert state.calls["slow"] == 1


async def test_two_first_requests_at_once_run_the_handler_once(client):
    state = state_of(client)
    tasks = {asyncio.create_task(client.post(SLOW, json=ORDER, headers={KEY: "race"}))
             for _ in range(2)}
    await asyncio.wait_for(state.started.wait(), 10)
    finished, waiting = await asyncio.wait(tasks, timeout=10,
                                           return_when=asyncio.FIRST_COMPLETED)
    assert len(finished) == 1 and len(waiting) == 1
    await problem(finished.pop().result(), 409, "idempotency-key-in-flight")
    state.release.set()
    winner = await asyncio.wait_for(waiting.pop(), 10)
    assert winner.status == 201 and await winner.json() == {"run": 1}
    assert state.calls["slow"] == 1


async def test_a_lapsed_claim_is_taken_over_and_its_late_answer_not_stored(client):
    """A claim past its lease (its process presumed dead) is free; when its request answers
    after all, that answer is not stored over the new holder's."""
    state = state_of(client)
    first = asyncio.create_task(client.post(SLOW, json=ORDER, headers={KEY: "lapse"}))
    await asyncio.wait_for(state.started.wait(), 10)
    await client.app[SERVICES].db.execute(
        "UPDATE core_idempotency_keys SET locked_until = now() - interval '1 second'")
    second = await client.post(SLOW, json=ORDER, headers={KEY: "lapse"})
    assert second.status == 201 and await second.json() == {"run": 2}
    state.release.set()
    late = await asyncio.wait_for(first, 10)
    assert await late.json() == {"run": 1}
    replay = await client.post(SLOW, json=ORDER, headers={KEY: "lapse"})
    assert await replay.json() == {"run": 2} and replay.headers[REPLAYED] == "true"


# --- what releases the key ------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "status"), [("raise", 500), ("500", 500), ("503", 503),
                                              ("429", 429)])
async def test_5xx_and_429_are_not_stored_and_a_retry_runs_again(client, mode, status):
    state = state_of(client)
    state.failures = [mode]
    failed = await client.post(FLAKY, headers={KEY: f"try-{mode}"})
    assert failed.status == status
    assert await rows(client) == []  # released
    retry = await client.post(FLAKY, headers={KEY: f"try-{mode}"})
    assert retry.status == 201 and await retry.json() == {"run": 2}
    assert REPLAYED not in retry.headers
    replay = await client.post(FLAKY, headers={KEY: f"try-{mode}"})
    assert await replay.json() == {"run": 2} and replay.headers[REPLAYED] == "true"
    assert state.calls["flaky"] == 2


async def test_a_streamed_answer_is_not_stored(client):
    state_of(client).failures = ["stream"]
    resp = await client.post(FLAKY, headers={KEY: "stream"})
    assert resp.status == 200 and await resp.read() == b"streamed"
    assert await rows(client) == []
    retry = await client.post(FLAKY, headers={KEY: "stream"})
    assert retry.status == 201 and await retry.json() == {"run": 2}


async def test_a_timed_out_request_releases_its_key(client):
    resp = await client.post("/api/v1/idem/stuck", headers={KEY: "stuck"})
    await problem(resp, 504, "timeout")
    assert await rows(client) == []
    retry = await client.post("/api/v1/idem/stuck", headers={KEY: "stuck"})
    assert retry.status == 201 and await retry.json() == {"run": 2}


async def test_input_refused_before_the_handler_does_not_use_the_key(client):
    resp = await client.post(ORDERS, json={"item": "", "qty": 0}, headers={KEY: "v"})
    await problem(resp, 422, "validation")
    resp = await client.post(ORDERS, data=b"{", headers={KEY: "v",
                                                         "Content-Type": "application/json"})
    await problem(resp, 400, "bad-request")
    assert await rows(client) == []
    # The key is still new: a valid request under it runs.
    resp = await client.post(ORDERS, json=ORDER, headers={KEY: "v"})
    assert resp.status == 201 and REPLAYED not in resp.headers
    assert state_of(client).calls["orders"] == 1


# --- expiry ---------------------------------------------------------------------------------


async def test_an_expired_answer_is_forgotten_and_purged(client):
    db = client.app[SERVICES].db
    assert (await client.post(ORDERS, json=ORDER, headers={KEY: "old"})).status == 201
    assert (await client.post(ORDERS, json=ORDER, headers={KEY: "kept"})).status == 201
    await db.execute("UPDATE core_idempotency_keys SET expires_at = now() - interval '1 second' "
                     "WHERE key = 'old'")
    # Past its time the key is new again, even for another request.
    resp = await client.post(ORDERS, json={**ORDER, "qty": 5}, headers={KEY: "old"})
    assert resp.status == 201 and await resp.json() == {"n": 3, "item": "tea", "qty": 5}
    assert REPLAYED not in resp.headers

    await db.execute("UPDATE core_idempotency_keys SET expires_at = now() - interval '1 second' "
                     "WHERE key = 'old'")
    from propmubi import core_plugin

    [job] = [j for j in core_plugin.propmubi_jobs() if j.name == "purge_idempotency_keys"]
    await job.run(client.app[SERVICES].contexts["core"])
    assert [r["key"] for r in await rows(client)] == ["kept"]


async def test_the_answer_is_kept_for_the_configured_time(client):
    await client.post(ORDERS, json=ORDER, headers={KEY: "ttl"})
    seconds = await client.app[SERVICES].db.fetchval(
        "SELECT extract(epoch FROM expires_at - now()) FROM core_idempotency_keys")
    assert 86_000 < seconds <= 86_400


def test_the_ttl_is_validated():
    config = load_config(environ={"PROPMUBI_HTTP__IDEMPOTENCY_TTL": "3600"},
                         use_default_path=False)
    assert config.http.idempotency_ttl == 3600.0
    assert load_config(environ={}, use_default_path=False).http.idempotency_ttl == 86_400.0
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ConfigError, match=r"http\.idempotency_ttl"):
            load_config(environ={"PROPMUBI_HTTP__IDEMPOTENCY_TTL": bad},
                        use_default_path=False)


# --- the header -----------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    [(KEY, "")], [(KEY, "x" * 256)], [(KEY, "has space")], [(KEY, "caf\u00e9")],
    [(KEY, "a"), (KEY, "b")]], ids=["empty", "long", "space", "non-ascii", "twice"])
async def test_a_bad_key_is_400_naming_the_header(client, headers):
    resp = await client.post(ORDERS, json=ORDER, headers=headers)
    doc = await problem(resp, 400, "bad-request")
    assert doc["errors"] == [{"in": "header", "field": KEY, "message": doc["errors"][0]["message"]}]
    assert KEY in doc["detail"]
    assert state_of(client).calls["orders"] == 0 and await rows(client) == []


async def test_the_longest_key_and_every_visible_character_are_taken(client):
    for key in ("x" * 255, "".join(chr(c) for c in range(0x21, 0x7F))[:255]):
        resp = await client.post(ORDERS, json=ORDER, headers={KEY: key})
        assert resp.status == 201, await resp.text()


# --- declaration and OpenAPI ----------------------------------------------------------------


def test_routes_that_stream_their_body_cannot_be_idempotent():
    table = Routes()
    with pytest.raises(TypeError, match="idempotent=True"):
        table.post("/x", idempotent=True, max_body=False)
    with pytest.raises(TypeError, match="idempotent=True"):
        table.post("/x", idempotent=True, form=OrderIn)
    with pytest.raises(TypeError, match="needs a body= class"):
        table.post("/x", idempotent=True, max_body=10)
    table.post("/x", idempotent=True, body=OrderIn, max_body=10)(create_order)
    assert table.specs[0].idempotent


async def test_the_openapi_document_describes_the_header(client):
    validate(client.app[OPENAPI], cls=OpenAPIV31SpecValidator)
    paths = client.app[OPENAPI]["paths"]
    op = paths[ORDERS]["post"]
    [param] = [p for p in op["parameters"] if p["name"] == KEY]
    assert param["in"] == "header" and param["required"] is False
    assert param["schema"]["maxLength"] == 255
    pattern = re.compile(param["schema"]["pattern"])
    assert pattern.search("a" * 10) and not pattern.search("a b") and not pattern.search("")
    assert set(op["responses"]) >= {"201", "400", "409", "422"}
    assert "Idempotency-Key" in op["responses"]["409"]["description"]
    assert "Invalid input" in op["responses"]["422"]["description"]
    assert "different request" in op["responses"]["422"]["description"]
    assert REPLAYED in op["responses"]["201"]["headers"]
    plain_op = paths["/api/v1/idem/plain"]["post"]
    assert "409" not in plain_op["responses"]
    assert all(p["name"] != KEY for p in plain_op.get("parameters", []))
