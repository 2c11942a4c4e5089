"""Declared routes: input validation into attrs classes (422 naming every bad field), responses,
and a property test that no JSON input makes the API answer 5xx."""

from __future__ import annotations

import itertools
import uuid

import attrs
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propmubi.config import load_config
from propmubi.errors import FieldError, ValidationFailed
from propmubi.validation import InvalidInput
from propmubi.web.middlewares import build_middlewares
from propmubi.web.routing import RateLimit, Routes, mount

PROBLEM = "application/problem+json"
NOTES = "/api/v1/reference/notes"
ECHO = "/api/v1/reference/echo"
QUERY = "/api/v1/reference/query"
GOOD = {"name": "n", "address": {"city": "c", "postcode": "123456"}, "lines": []}


async def errors_of(resp) -> list[tuple[str, str, str]]:
    assert resp.status == 422, await resp.text()
    assert resp.content_type == PROBLEM
    doc = await resp.json(content_type=PROBLEM)
    assert doc["type"] == "https://propmubi.dev/problems/validation"
    return [(e["in"], e["field"], e["message"]) for e in doc["errors"]]


async def test_every_bad_body_field_is_listed(client):
    body = {
        "name": 7,                                           # int for a string
        "address": {"city": "", "postcode": "12", "floor": 3},  # validators + unknown nested
        "lines": [
            {"sku": "ok", "qty": True},                      # bool for an int
            {"qty": 0},                                      # missing required + validator
            {"sku": "s" * 13, "qty": 2},                     # validator in a list item
            "not an object",
        ],
        "count": "3",                                        # string for an int, no coercion
        "colour": "blue",                                    # not an enum member
        "due": "2030-01-01T10:00:00",                        # no UTC offset
        "labels": {"a": 1, "b": "x"},                        # map value
        "extra": None,                                       # unknown field
    }
    errors = await errors_of(await client.post(ECHO, json=body))
    assert {field: message for _, field, message in errors} == {
        "name": "expected a string, got integer",
        "address.floor": "unknown field",
        "address.city": "Length of 'city' must be >= 1: 0",
        "address.postcode": "'postcode' must match regex '[0-9]{6}' ('12' doesn't)",
        "lines[0].qty": "expected an integer, got boolean",
        "lines[1].sku": "required field missing",
        "lines[1].qty": "'qty' must be >= 1: 0",
        "lines[2].sku": "Length of 'sku' must be <= 12: 13",
        "lines[3]": "expected an object, got string",
        "count": "expected an integer, got string",
        "colour": "must be one of 'red', 'green'",
        "due": "expected a date-time with a UTC offset",
        "labels.b": "expected an integer, got string",
        "extra": "unknown field",
    }
    assert len(errors) == 14 and {where for where, _, _ in errors} == {"body"}


async def test_constraint_errors_alone_are_all_listed(client):
    body = {"name": "x" * 21, "address": {"city": "", "postcode": "1"},
            "lines": [{"sku": "a", "qty": 1}] * 4}
    errors = await errors_of(await client.post(ECHO, json=body))
    assert sorted(field for _, field, _ in errors) == [
        "address.city", "address.postcode", "lines", "name"]


async def test_shapes_and_values_the_database_would_choke_on(client):
    cases = [
        ({"address": [], "lines": {}}, {"address": "expected an object, got array",
                                        "lines": "expected an array, got object"}),
        # cattrs alone would take a string as a list of characters.
        ({"lines": "abc"}, {"lines": "expected an array, got string"}),
        ({"name": None, "address": None}, {"name": "expected a string, got null",
                                            "address": "expected an object, got null"}),
        ({"name": "a\x00b"}, {"name": "must not contain NUL (U+0000) characters"}),
        ({"count": 2**63}, {"count": "expected an integer within the 64-bit range"}),
        ({"count": 1.5}, {"count": "expected an integer, got number"}),
        ({"due": "0001-01-01T00:00:00+01:00"},
         {"due": "expected a date-time within years 1-9999 in UTC"}),
    ]
    for change, expected in cases:
        errors = await errors_of(await client.post(ECHO, json={**GOOD, **change}))
        assert {f: m for _, f, m in errors} == expected, change
    body = {k: v for k, v in GOOD.items() if k != "name"}
    assert await errors_of(await client.post(ECHO, json=body)) == [
        ("body", "name", "required field missing")]


async def test_valid_body_is_structured_and_returned(client):
    body = {**GOOD, "lines": [{"sku": "a", "qty": 2}], "count": -3, "colour": "green",
            "due": "2030-01-01T10:00:00+05:30", "labels": {"x": 1}}
    resp = await client.post(ECHO, json=body)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {**body, "due": "2030-01-01T04:30:00+00:00"}


async def test_bad_path_and_query_parameters(client):
    assert await errors_of(await client.get(f"{NOTES}/not-a-uuid")) == [
        ("path", "id", "expected a UUID")]
    for limit, message in [("0", "'limit' must be >= 1: 0"), ("101", "'limit' must be <= 100: 101"),
                           ("abc", "expected an integer, got string"),
                           ("1.5", "expected an integer, got string"),
                           ("9" * 30, "expected an integer, got string")]:
        assert await errors_of(await client.get(NOTES, params={"limit": limit})) == [
            ("query", "limit", message)], limit
    assert await errors_of(await client.get(NOTES, params={"limit": "0", "bogus": "1"})) == [
        ("query", "bogus", "unknown field"), ("query", "limit", "'limit' must be >= 1: 0")]
    assert await errors_of(await client.get("/api/v1/reference/slow?seconds=nan")) == [
        ("query", "seconds", "expected a number, got string")]


async def test_query_lists_and_booleans(client):
    # Query and body errors come together in one answer.
    resp = await client.post(f"{ECHO}?flag=maybe", json={**GOOD, "name": 1})
    assert sorted(await errors_of(resp)) == [("body", "name", "expected a string, got integer"),
                                             ("query", "flag", "expected a boolean, got string")]
    a, b = uuid.uuid4(), uuid.uuid4()
    for query, expected in [
        ("tag=a&tag=b&flag=true", {"tag": ["a", "b"], "flag": True, "ids": None}),
        (f"tag=a&flag=0&ids={a}", {"tag": ["a"], "flag": False, "ids": [str(a)]}),
        (f"ids={a}&ids={b}", {"tag": [], "flag": False, "ids": [str(a), str(b)]}),
    ]:
        resp = await client.get(f"{QUERY}?{query}")
        assert await resp.json() == expected, query
    assert await errors_of(await client.get(f"{QUERY}?ids={a}&ids=nope&flag=")) == [
        ("query", "flag", "expected a boolean, got string"),
        ("query", "ids[1]", "expected a UUID")]


async def test_notes_round_trip(client):
    resp = await client.post(NOTES, json={"text": "hello", "tags": ["a", "b"]})
    assert resp.status == 201
    note = await resp.json()
    assert note["text"] == "hello" and note["tags"] == ["a", "b"]
    assert note["created_at"].endswith("+00:00")
    resp = await client.get(f"{NOTES}/{note['id']}")
    assert resp.status == 200 and await resp.json() == note
    await client.post(NOTES, json={"text": "second"})
    resp = await client.get(NOTES, params={"limit": "1"})
    assert [n["text"] for n in await resp.json()] == ["second"]
    assert len(await (await client.get(NOTES)).json()) == 2
    resp = await client.get(f"{NOTES}/{uuid.uuid4()}")
    assert resp.status == 404


# -- declaring routes, on a bare app (no database) ----------------------------------------------

@attrs.frozen
class Item:
    n: int


def test_rate_limit_parse():
    assert RateLimit.parse("30/minute") == RateLimit(30, 60)
    assert RateLimit.parse(" 5 / second ") == RateLimit(5, 1)
    assert RateLimit.parse("2/day") == RateLimit(2, 86400)
    assert RateLimit.parse("7/10s") == RateLimit(7, 10)
    assert str(RateLimit(7, 10)) == "7/10s"
    for bad in ["0/minute", "5/week", "5", "5/0s", "-1/minute", "x/minute"]:
        with pytest.raises(ValueError, match="rate limit"):
            RateLimit.parse(bad)


def test_route_declaration_errors():
    routes = Routes()
    with pytest.raises(TypeError, match="body= must be an attrs class"):
        routes.post("/x", body=dict)
    with pytest.raises(TypeError, match="rate_limit=True"):
        routes.get("/x", rate_limit=True)


async def test_handler_results(aiohttp_client):
    routes = Routes(tags=["t"])

    @routes.get("/none")
    async def none(request: web.Request) -> None:
        return None

    @routes.get("/list", response=list[Item])
    async def items(request: web.Request) -> list[Item]:
        return [Item(1), Item(2)]

    @routes.put("/raw", status=202)
    async def raw(request: web.Request) -> web.Response:
        return web.Response(text="raw", status=202)

    @routes.delete("/item/{n}", params=Item, status=200)
    async def delete(request: web.Request, params: Item) -> Item:
        return params

    @routes.patch("/item", body=Item, status=202)
    async def patch(request: web.Request, body: Item) -> dict[str, int]:
        return {"n": body.n + 1}

    config = load_config(environ={}, use_default_path=False)
    app = web.Application(middlewares=build_middlewares(config, []))
    specs = mount(app, routes, "/api/v1")
    assert [s.path for s in specs] == ["/api/v1/none", "/api/v1/list", "/api/v1/raw",
                                       "/api/v1/item/{n}", "/api/v1/item"]
    assert specs[0].tags == ("t",)
    client = await aiohttp_client(app)
    resp = await client.get("/api/v1/none")
    assert resp.status == 204
    assert await (await client.get("/api/v1/list")).json() == [{"n": 1}, {"n": 2}]
    resp = await client.put("/api/v1/raw")
    assert (resp.status, await resp.text()) == (202, "raw")
    assert await (await client.delete("/api/v1/item/-4")).json() == {"n": -4}
    resp = await client.patch("/api/v1/item", json={"n": 1})
    assert (resp.status, await resp.json()) == (202, {"n": 2})


@attrs.frozen
class Span:
    low: int = attrs.field(validator=attrs.validators.ge(0))
    high: int = attrs.field(validator=attrs.validators.ge(0))
    label: str = attrs.field(validator=attrs.validators.max_len(5))


async def test_a_partial_body_handler_reports_its_own_problems_with_the_body_s(aiohttp_client):
    """``partial_body=True``: a body that does not validate reaches the handler as an
    InvalidInput (its errors, and its fields valid alone), so one 422 lists both."""
    routes = Routes(tags=["t"])
    seen: list[object] = []

    @routes.post("/span", body=Span, partial_body=True)
    async def span(request: web.Request, body: Span | InvalidInput) -> dict[str, int]:
        seen.append(body)
        values = body.valid if isinstance(body, InvalidInput) else attrs.asdict(body)
        errors = list(body.errors) if isinstance(body, InvalidInput) else []
        if "low" in values and "high" in values and values["low"] > values["high"]:
            errors.append(FieldError("body", "high", "below low"))
        if errors:
            raise ValidationFailed(errors)
        assert isinstance(body, Span)
        return {"width": body.high - body.low}

    config = load_config(environ={}, use_default_path=False)
    app = web.Application(middlewares=build_middlewares(config, []))
    mount(app, routes, "/api/v1")
    client = await aiohttp_client(app)
    resp = await client.post("/api/v1/span", json={"low": 1, "high": 4, "label": "a"})
    assert (resp.status, await resp.json()) == (200, {"width": 3})
    # The label's own error and the handler's, in one answer; the fields valid alone came in.
    errors = await errors_of(await client.post("/api/v1/span",
                                               json={"low": 5, "high": 2, "label": "toolong"}))
    assert [field for _, field, _ in errors] == ["label", "high"]
    assert seen[-1] == InvalidInput(errors=seen[-1].errors, valid={"low": 5, "high": 2})
    # A field refused alone is not among the valid ones; a body that is not an object never
    # reaches the handler.
    errors = await errors_of(await client.post("/api/v1/span",
                                               json={"low": -1, "high": 2, "label": "a"}))
    assert [field for _, field, _ in errors] == ["low"]
    assert seen[-1].valid == {"high": 2, "label": "a"}
    calls = len(seen)
    errors = await errors_of(await client.post("/api/v1/span", json=[1, 2]))
    assert len(seen) == calls


# -- property: no JSON input makes the API fail --------------------------------------------------

# Random text, plus text from characters that have broken text handling before: NUL (which
# PostgreSQL refuses), line separators, the highest code points, quotes.
TEXT = st.text(max_size=60) | st.text(st.sampled_from("a \x00\n\u2028\ufeff\U0010ffff'\"\\%"),
                                       max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
# Mostly well-formed notes (so that many reach the database), some with wrong parts.
WELL_FORMED = st.fixed_dictionaries({"text": TEXT | st.text(min_size=195, max_size=201)},
                                    optional={"tags": st.lists(TEXT, max_size=5),
                                              "priority": st.integers(0, 5)})
NOTE_LIKE = st.fixed_dictionaries({}, optional={"text": JSON, "tags": JSON, "priority": JSON,
                                                "extra": JSON})
BODIES = st.one_of(WELL_FORMED, WELL_FORMED, NOTE_LIKE, JSON)
_addresses = itertools.count(1)


@pytest.fixture
def config_overrides(request):
    # Each example comes from its own address, behind a trusted proxy: the route allows 5 a
    # minute per address.
    return getattr(request, "param", {"http": {"trust_forwarded": True}})


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=BODIES)
async def test_no_json_body_makes_the_api_fail(client, body):
    n = next(_addresses)
    address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
    resp = await client.post(NOTES, json=body, headers={"X-Forwarded-For": address})
    assert resp.status < 500, await resp.text()
    if resp.status == 201:
        assert (await resp.json())["text"] == body["text"]
    else:
        assert 400 <= resp.status < 500
        assert resp.status != 429
        assert resp.content_type == PROBLEM
        assert (await resp.json(content_type=PROBLEM))["status"] == resp.status
