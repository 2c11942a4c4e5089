"""The OpenAPI 3.1 document: valid, complete for the declared routes, and true to what the
routes really answer."""

from __future__ import annotations

import collections
import enum
import re

import attrs
import pytest
from aiohttp import web
from attrs import validators as v
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from propmubi.validation import INT_MAX, INT_MIN, JSON_SCHEMA_ATTR, json_schema, not_blank
from propmubi.web.openapi import NO_NUL, NOT_BLANK, build_openapi, schema_for
from propmubi.web.routing import Routes, mount

NOTES = "/api/v1/reference/notes"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture
async def doc(client):
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    return await resp.json()


def conforms(doc: dict, schema: dict, instance: object) -> None:
    """Validate ``instance`` against ``schema``, resolving ``#/components`` refs in ``doc``."""
    OAS31Validator({**schema, "components": doc["components"]}).validate(instance)


async def test_document_is_valid_openapi_31(doc):
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert [i for i, n in collections.Counter(ids).items() if n > 1] == []


async def test_only_api_routes_are_documented(doc):
    assert doc["paths"], "no routes at all"
    assert all(path.startswith("/api/v1/") for path in doc["paths"])
    for path in ["/health", "/ready", "/metrics", "/console/reference/notes"]:
        assert path not in doc["paths"]
    assert "/api/v1/openapi.json" in doc["paths"]


async def test_request_body_schema_with_constraints(doc):
    op = doc["paths"][NOTES]["post"]
    assert op["operationId"] == "reference.create_note"
    assert op["summary"] == "Create a note."
    assert op["tags"] == ["reference"]
    body = op["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NoteIn"}
    assert doc["components"]["schemas"]["NoteIn"] == {
        "type": "object",
        "description": "A note to create.",
        "additionalProperties": False,
        "required": ["text"],
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_NUL,
                     "description": "The note's text."},
            "tags": {"type": "array", "items": {"type": "string", "pattern": NO_NUL},
                     "maxItems": 5},
            "priority": {"type": "integer", "minimum": 0, "maximum": 5, "default": 0},
        },
    }


async def test_nested_schemas_enums_and_patterns(doc):
    schemas = doc["components"]["schemas"]
    echo = schemas["EchoIn"]
    assert echo["properties"]["address"] == {"$ref": "#/components/schemas/Address"}
    assert echo["properties"]["lines"] == {
        "type": "array", "items": {"$ref": "#/components/schemas/Line"}, "maxItems": 3}
    assert echo["properties"]["colour"] == {"enum": ["red", "green"], "default": "red"}
    assert echo["properties"]["due"]["anyOf"] == [
        {"type": "string", "format": "date-time"}, {"type": "null"}]
    assert echo["properties"]["labels"] == {"type": "object", "additionalProperties": {
        "type": "integer", "minimum": INT_MIN, "maximum": INT_MAX}}
    assert echo["description"].endswith("optional date-times, maps.")  # a whole paragraph
    # attrs' matches_re must match the whole value; an unanchored JSON Schema pattern would
    # let clients send what the server refuses.
    assert schemas["Address"]["properties"]["postcode"]["pattern"] == "^(?:[0-9]{6})$"
    assert schemas["Line"]["required"] == ["sku", "qty"]


async def test_parameters(doc):
    get_one = doc["paths"][NOTES + "/{id}"]["get"]
    assert get_one["parameters"] == [{"name": "id", "in": "path", "required": True,
                                      "schema": {"type": "string", "format": "uuid"}}]
    listing = doc["paths"][NOTES]["get"]
    assert listing["parameters"] == [{
        "name": "limit", "in": "query", "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}]
    tag = doc["paths"]["/api/v1/reference/echo"]["post"]["parameters"][0]
    assert tag["name"] == "tag" and tag["explode"] is True
    assert tag["schema"]["type"] == "array"


async def test_responses(doc):
    create = doc["paths"][NOTES]["post"]["responses"]
    assert create["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Note"}
    for status in ["400", "413", "415", "422", "429", "5XX"]:
        assert create[status]["content"]["application/problem+json"]["schema"] == PROBLEM_REF
    listing = doc["paths"][NOTES]["get"]["responses"]
    assert listing["200"]["content"]["application/json"]["schema"] == {
        "type": "array", "items": {"$ref": "#/components/schemas/Note"}}
    assert {"422", "429"} <= set(listing) and "415" not in listing
    assert "404" in doc["paths"][NOTES + "/{id}"]["get"]["responses"]  # declared errors=[404]
    # rate_limit=False routes cannot answer 429; routes without input cannot answer 422.
    assert "429" not in doc["paths"]["/api/v1/reference/echo"]["post"]["responses"]
    assert "429" not in doc["paths"]["/api/v1/openapi.json"]["get"]["responses"]
    assert "422" not in doc["paths"]["/api/v1/reference/boom"]["get"]["responses"]
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status"}
    assert set(problem["properties"]["errors"]["items"]["required"]) == {"in", "field",
                                                                         "message"}


async def test_real_responses_conform_to_the_document(client, doc):
    resp = await client.post(NOTES, json={"text": "hello", "tags": ["x"]})
    assert resp.status == 201
    conforms(doc, {"$ref": "#/components/schemas/Note"}, await resp.json())
    listing = doc["paths"][NOTES]["get"]["responses"]["200"]["content"]["application/json"]
    conforms(doc, listing["schema"], await (await client.get(NOTES)).json())
    resp = await client.post(NOTES, json={"text": "", "priority": True, "bogus": 1})
    assert resp.status == 422
    conforms(doc, PROBLEM_REF, await resp.json(content_type="application/problem+json"))
    conforms(doc, {"$ref": "#/components/schemas/NoteIn"}, {"text": "ok", "priority": 5})
    with pytest.raises(Exception, match="too long"):
        conforms(doc, {"$ref": "#/components/schemas/NoteIn"}, {"text": "x" * 201})


# -- the generator, without a server -----------------------------------------------------------

class Size(enum.Enum):
    s = "S"
    m = "M"


@attrs.frozen
class Problem:
    """A plugin's own class that happens to share the core's schema name."""

    code: str


def _other_problem() -> type:
    @attrs.frozen
    class Problem:
        other: int

    return Problem


@attrs.frozen
class Tree:
    """Refers to itself."""

    children: list[Tree] = attrs.Factory(list)
    size: Size = Size.m
    nick: str | None = attrs.field(default=None, validator=v.optional(
        [v.min_len(2), v.matches_re(r"[a-z]+", func=re.match)]))
    rank: int = attrs.field(default=1, validator=[v.gt(0), v.lt(10)])


def test_same_class_names_get_distinct_components():
    routes = Routes()
    other = _other_problem()

    @routes.post("/a", body=Problem, response=other)
    async def a(request, body):
        return None

    specs = mount(web.Application(), routes, "/api/v1")
    doc = build_openapi(specs)
    validate(doc, cls=OpenAPIV31SpecValidator)
    schemas = doc["components"]["schemas"]
    assert "type" in schemas["Problem"]["properties"]  # the core's stays the core's
    op = doc["paths"]["/api/v1/a"]["post"]
    body_ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    response_ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert len({body_ref, response_ref, "#/components/schemas/Problem"}) == 3
    assert schemas[body_ref.rsplit("/", 1)[1]]["properties"] == {
        "code": {"type": "string", "pattern": NO_NUL}}
    assert schemas[response_ref.rsplit("/", 1)[1]]["properties"] == {
        "other": {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX}}


def test_recursive_and_constrained_schemas():
    components: dict = {}
    assert schema_for(Tree, components) == {"$ref": "#/components/schemas/Tree"}
    tree = components["Tree"]["properties"]
    assert tree["children"] == {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}}
    assert tree["size"] == {"enum": ["S", "M"], "default": "M"}
    assert tree["nick"]["minLength"] == 2 and tree["nick"]["pattern"] == "^(?:[a-z]+)"
    assert tree["rank"] == {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10,
                            "default": 1}
    assert schema_for(dict[str, list[int]], components) == {
        "type": "object", "additionalProperties": {"type": "array", "items": {
            "type": "integer", "minimum": INT_MIN, "maximum": INT_MAX}}}


# -- the document states what the server accepts (issue 10: schemathesis' mismatches) ---------

@json_schema(minimum=1, maximum=50)
def _limit(instance, attribute, value):
    if not 1 <= value <= 50:
        raise ValueError("must be between 1 and 50")


def _control_free(instance, attribute, value):
    """No C0 controls: stated as a pattern that itself excludes NUL."""


_control_free = json_schema(pattern="^[^\\u0000-\\u001f]*$")(_control_free)


@json_schema(anyOf=[{"required": ["size"]}, {"required": ["tags"]}])
@attrs.frozen
class Rules:
    """Validators of every kind the generator reads."""

    name: str = attrs.field(validator=[v.min_len(1), v.max_len(5), not_blank])
    line: str = attrs.field(default="x", validator=[not_blank, _control_free])
    size: str | None = attrs.field(default=None, validator=v.optional(v.in_(["s", "m"])))
    tags: list[str] | None = attrs.field(default=None, validator=v.optional(v.max_len(3)))
    limit: int = attrs.field(default=20, validator=_limit)


@json_schema(maxItems=4, items={"x-not-blank": True, "pattern": "^[^\\u0000-\\u001f]*$"})
def _words(instance, attribute, value):
    """Up to four words, each not blank and without C0 controls."""


@attrs.frozen
class MaybeWords:
    words: list[str] | None = attrs.field(default=None, validator=_words)


@attrs.frozen
class Words:
    words: list[str] = attrs.field(factory=list, validator=_words)


def _validator(components: dict) -> OAS31Validator:
    return OAS31Validator({"$ref": "#/components/schemas/Rules",
                           "components": {"schemas": components}})


def test_constraints_of_every_validator_kind_are_stated():
    components: dict = {}
    schema_for(Rules, components)
    rules = components["Rules"]
    props = rules["properties"]
    # not_blank and "no NUL" folded into one pattern; a pattern excluding NUL replaces it.
    assert props["name"]["pattern"] != NO_NUL and "allOf" not in props["name"]
    assert props["line"]["pattern"].startswith("^[^\\u0000-\\u001f]*[^\\u0000-\\u001f")
    assert props["size"]["enum"] == ["m", "s", None]  # optional: null stays allowed
    assert props["tags"]["maxItems"] == 3 and "maxLength" not in props["tags"]
    assert props["limit"] == {"type": "integer", "minimum": 1, "maximum": 50, "default": 20}
    assert rules["anyOf"] == [{"required": ["size"]}, {"required": ["tags"]}]  # a class's rule
    check = _validator(components)
    for good in ({"name": "a", "size": "s"}, {"name": " a ", "size": None, "limit": 50},
                 {"name": "a", "tags": [], "limit": 17.0}):
        assert check.is_valid(good), good
    for bad in ({"name": "   ", "size": "s"}, {"name": "a\u0000", "size": "s"},
                {"name": "\u00a0\u3000\x1c", "size": "s"},
                {"name": "a", "line": "tab\there", "size": "s"}, {"name": "a", "size": "xl"},
                {"name": "a", "tags": ["1", "2", "3", "4"]},
                {"name": "a", "size": "s", "limit": 51}, {"name": "a"}):
        assert not check.is_valid(bad), bad
    tags = OAS31Validator(props["tags"])
    assert not tags.is_valid(["a\u0000"]) and tags.is_valid(["a"]) and tags.is_valid(None)
    assert OAS31Validator({"pattern": NOT_BLANK}).is_valid("\u3000a")


def test_the_server_takes_what_the_document_calls_an_integer():
    from propmubi.validation import json_converter, query_converter, structure_input

    @attrs.frozen
    class Floors:
        floors: int

    assert structure_input({"floors": 17.0}, Floors, "body", json_converter) == (Floors(17), [])
    value, errors = structure_input({"floors": 17.5}, Floors, "body", json_converter)
    assert value is None and errors[0]["field"] == "floors"
    big = str(INT_MAX)  # 19 digits: an integer the document allows in a query string
    assert structure_input({"floors": big}, Floors, "query", query_converter) == (
        Floors(INT_MAX), [])


@attrs.frozen
class Search:
    q: str | None = attrs.field(default=None, validator=v.optional(v.max_len(9)))
    kind: str | None = attrs.field(default=None, validator=v.optional(v.in_(["a", "b"])))


@attrs.frozen
class Upload:
    file: bytes
    position: int | None = attrs.field(default=None, validator=v.optional([v.ge(0),
                                                                            v.le(100)]))


def test_query_parameters_and_form_parts_are_never_null():
    routes = Routes()

    @routes.get("/search", query=Search, response=list[str])
    async def search(request, query):
        return []

    @routes.post("/upload", form=Upload, status=204)
    async def upload(request):
        return None

    doc = build_openapi(mount(web.Application(), routes, "/api/v1"))
    validate(doc, cls=OpenAPIV31SpecValidator)
    q, kind = doc["paths"]["/api/v1/search"]["get"]["parameters"]
    assert q["schema"] == {"type": "string", "pattern": NO_NUL, "maxLength": 9}
    assert kind["schema"] == {"type": "string", "enum": ["a", "b"]}
    form = doc["components"]["schemas"]["Upload"]["properties"]
    assert form["position"] == {"type": "integer", "minimum": 0, "maximum": 100}
    responses = doc["paths"]["/api/v1/upload"]["post"]["responses"]
    assert "default" not in responses and "5XX" in responses


async def test_each_path_template_shape_is_declared_once(doc):
    # OpenAPI tells templated paths apart by shape only: /projects/{ref} next to
    # /projects/{id} is one path declared twice, which clients and tools cannot resolve.
    shapes = collections.defaultdict(list)
    for path in doc["paths"]:
        shapes[re.sub(r"\{[^}]+\}", "{}", path)].append(path)
    assert [paths for paths in shapes.values() if len(paths) > 1] == []
    assert "/api/v1/projects/{id}" in doc["paths"]
    assert set(doc["paths"]["/api/v1/projects/{id}"]) >= {"get", "patch", "delete"}


def test_item_rules_of_a_list_or_null_reach_its_items_and_are_not_used_up():
    # One validator on two fields: writing the first field's schema once emptied the
    # validator's keywords, and a list-or-null's item rules sat where generators missed them.
    components: dict = {}
    schema_for(MaybeWords, components)
    schema_for(Words, components)
    for name in ("MaybeWords", "Words"):
        words = OAS31Validator(components[name]["properties"]["words"])
        assert words.is_valid(["a"]), name
        for bad in ([""], [" "], ["a\u0001"], ["a"] * 5):
            assert not words.is_valid(bad), (name, bad)
    branch = components["MaybeWords"]["properties"]["words"]["anyOf"][0]
    assert branch["type"] == "array" and "pattern" in branch["items"]
    assert getattr(_words, JSON_SCHEMA_ATTR)["items"] == {
        "x-not-blank": True, "pattern": "^[^\\u0000-\\u001f]*$"}
