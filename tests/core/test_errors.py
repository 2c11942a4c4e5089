"""Errors as RFC 9457 problem+json (HTML under /console): the shape, the mapping of exceptions,
and that nothing internal leaks."""

from __future__ import annotations

import logging
import uuid

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from propmubi.db import OperationalError, QueryCanceled
from propmubi.errors import (
    PROBLEM_BASE,
    Conflict,
    FieldError,
    NotFound,
    ProblemError,
    ValidationFailed,
)
from propmubi.redis import RedisError
from propmubi.web.middlewares import error_response, problem_response

PROBLEM = "application/problem+json"
ECHO = "/api/v1/reference/echo"


async def test_problem_shape_is_pinned(client):
    resp = await client.post(ECHO, json={"name": 1, "address": {"city": "c", "postcode": "1"},
                                         "lines": []},
                             headers={"X-Request-ID": "pin-1"})
    assert resp.status == 422
    assert resp.headers["Content-Type"] == PROBLEM
    doc = await resp.json(content_type=PROBLEM)
    assert set(doc) == {"type", "title", "status", "detail", "instance", "request_id", "errors"}
    assert doc["type"] == "https://propmubi.dev/problems/validation"
    assert doc["type"].startswith(PROBLEM_BASE)
    assert isinstance(doc["title"], str) and doc["title"]
    assert doc["status"] == 422 and type(doc["status"]) is int
    assert isinstance(doc["detail"], str) and doc["detail"]
    assert doc["instance"] == ECHO
    assert doc["request_id"] == "pin-1"
    assert isinstance(doc["errors"], list) and len(doc["errors"]) == 2
    for item in doc["errors"]:
        assert set(item) == {"in", "field", "message"}
        assert all(isinstance(v, str) for v in item.values())
        assert item["in"] == "body"
    assert {e["field"] for e in doc["errors"]} == {"name", "address.postcode"}


async def problem(resp, status):
    assert resp.status == status
    assert resp.content_type == PROBLEM
    doc = await resp.json(content_type=PROBLEM)
    assert doc["status"] == status
    assert doc["type"].startswith(PROBLEM_BASE)
    assert doc["request_id"] == resp.headers["X-Request-ID"]
    return doc


async def test_not_found_and_method_not_allowed(client):
    doc = await problem(await client.get("/api/v1/no/such/thing"), 404)
    assert doc["type"] == PROBLEM_BASE + "not-found"
    assert doc["instance"] == "/api/v1/no/such/thing"
    doc = await problem(await client.get("/no-such-page"), 404)
    # A handler's own NotFound keeps its detail.
    doc = await problem(await client.get(f"/api/v1/reference/notes/{uuid.uuid4()}"), 404)
    assert doc["detail"].startswith("no note ")

    resp = await client.delete("/api/v1/reference/notes")
    doc = await problem(resp, 405)
    assert doc["type"] == PROBLEM_BASE + "method-not-allowed"
    assert set(resp.headers["Allow"].split(",")) == {"GET", "HEAD", "POST"}  # RFC 9110 wants it


async def test_unhandled_error_is_a_bare_500_with_the_traceback_logged(client, caplog):
    caplog.set_level(logging.ERROR, logger="propmubi.web")
    resp = await client.get("/api/v1/reference/boom", headers={"X-Request-ID": "boom-1"})
    text = await resp.text()
    assert "secret internal detail" not in text
    assert "RuntimeError" not in text and "Traceback" not in text
    doc = await problem(resp, 500)
    assert doc == {"type": PROBLEM_BASE + "internal", "title": "Internal server error",
                   "status": 500, "instance": "/api/v1/reference/boom", "request_id": "boom-1"}
    [record] = [r for r in caplog.records if r.name == "propmubi.web"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert "secret internal detail" in caplog.text  # the log keeps what the caller may not see
    assert record.request_id == "boom-1"


async def test_unsupported_media_type(client):
    body = b'{"name": "n"}'
    for content_type in ["text/plain", "application/x-www-form-urlencoded", None]:
        headers = {"Content-Type": content_type} if content_type else {}
        doc = await problem(await client.post(ECHO, data=body, headers=headers), 415)
        assert doc["type"] == PROBLEM_BASE + "unsupported-media-type"
        assert "application/json" in doc["detail"]


async def test_malformed_json_is_400(client):
    for raw in [b"{", b"{'a': 1}", b"[1,]", b"\xff\xfe", b"NaN", b"{} {}", b'"\\ud800"',
                b"[" * 2000 + b"]" * 2000]:
        resp = await client.post(ECHO, data=raw, headers={"Content-Type": "application/json"})
        doc = await problem(resp, 400)
        assert doc["type"] == PROBLEM_BASE + "bad-request"
        assert "not valid JSON" in doc["detail"]


async def test_empty_body_and_non_object_body(client):
    json_type = {"Content-Type": "application/json"}
    doc = await problem(await client.post(ECHO, data=b"", headers=json_type), 400)
    assert "empty" in doc["detail"]
    for raw, kind in [(b"[]", "array"), (b"null", "null"), (b'"x"', "string"), (b"3", "integer")]:
        doc = await problem(await client.post(ECHO, data=raw, headers=json_type), 422)
        assert doc["errors"] == [{"in": "body", "field": "", "message":
                                  f"expected an object, got {kind}"}]


# -- the mapping, without a server ------------------------------------------------------------

def _request(path: str = "/api/v1/x") -> web.Request:
    return make_mocked_request("GET", path)


def _doc(resp: web.Response) -> dict:
    assert resp.content_type == PROBLEM
    return orjson.loads(resp.body)


@pytest.mark.parametrize(("exc", "status", "slug"), [
    (web.HTTPNotFound(), 404, "not-found"),
    (web.HTTPBadRequest(text="bad cursor"), 400, "bad-request"),
    (web.HTTPConflict(), 409, "conflict"),
    (web.HTTPUnauthorized(), 401, "unauthorized"),
    (web.HTTPTooManyRequests(headers={"Retry-After": "7"}), 429, "rate-limited"),
    (web.HTTPGone(), 410, "http-410"),
    (web.HTTPRequestEntityTooLarge(max_size=10, actual_size=11), 413, "payload-too-large"),
    (QueryCanceled("canceling statement due to statement timeout"), 504, "timeout"),
    (OperationalError("could not connect to server"), 503, "unavailable"),
    (RedisError("Connection refused"), 503, "unavailable"),
    (ConnectionResetError(), 503, "unavailable"),
    (TimeoutError(), 504, "timeout"),
    (KeyError("secret"), 500, "internal"),
])
def test_exception_mapping(exc, status, slug):
    resp = error_response(exc, _request(), "rid")
    doc = _doc(resp)
    assert (resp.status, doc["status"], doc["type"]) == (status, status, PROBLEM_BASE + slug)
    assert "secret" not in resp.text and "connect" not in resp.text
    assert "Content-Type: text/plain" not in str(resp.headers)


def test_http_exception_details_and_headers_survive():
    assert _doc(error_response(web.HTTPBadRequest(text="bad cursor"), _request(), "r")
                )["detail"] == "bad cursor"
    assert "detail" not in _doc(error_response(web.HTTPConflict(), _request(), "r"))
    resp = error_response(web.HTTPTooManyRequests(headers={"Retry-After": "7"}), _request(), "r")
    assert resp.headers["Retry-After"] == "7"
    gone = _doc(error_response(web.HTTPGone(), _request(), "r"))
    assert gone["title"] == "Gone"
    resp = error_response(OperationalError("x"), _request(), "r")
    assert resp.headers["Retry-After"] == "5"


def test_problem_error_members():
    exc = Conflict("the unit is sold", headers={"X-A": "1"}, unit="A-101")
    resp = problem_response(exc, _request("/api/v1/units"), "rid")
    assert resp.status == 409
    assert resp.headers["X-A"] == "1"
    assert _doc(resp) == {"type": PROBLEM_BASE + "conflict", "status": 409,
                          "title": "Conflict with the current state", "detail": "the unit is sold",
                          "instance": "/api/v1/units", "unit": "A-101", "request_id": "rid"}
    assert str(NotFound()) == "Not found"
    assert ProblemError().to_problem() == {"type": PROBLEM_BASE + "internal",
                                           "title": "Internal server error", "status": 500}


def test_validation_failed_detail_names_the_fields():
    errors = [FieldError("body", f"f{i}", "bad") for i in range(7)] + [FieldError("query", "", "x")]
    exc = ValidationFailed(errors)
    assert exc.detail == "Invalid input: body.f0, body.f1, body.f2, body.f3, body.f4"
    assert exc.to_problem()["errors"] == errors
    assert ValidationFailed([FieldError("body", "", "x")]).detail == "Invalid input: body"


def test_console_errors_are_escaped_html():
    exc = NotFound("<script>alert(1)</script>")
    resp = problem_response(exc, _request("/console/x"), "<rid>")
    assert resp.status == 404
    assert resp.content_type == "text/html"
    assert "<script>" not in resp.text
    assert "&lt;script&gt;" in resp.text and "&lt;rid&gt;" in resp.text
    # Only /console and what lies under it is the console.
    assert problem_response(exc, _request("/consoles"), "r").content_type == PROBLEM
