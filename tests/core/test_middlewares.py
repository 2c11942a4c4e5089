"""The middleware stack end to end: request id, access log, security headers, CORS, body limit,
timeouts and rate limits, on the full application with real PostgreSQL and Redis."""

from __future__ import annotations

import logging
import sys
import uuid
from io import StringIO

import orjson
import pytest
from prometheus_client import REGISTRY

from propmubi.config import RedisSection
from propmubi.errors import TooManyRequests
from propmubi.keys import Keys
from propmubi.observability import REQUEST_ID, JsonFormatter
from propmubi.redis import create_redis
from propmubi.web.ratelimit import RateLimiter
from propmubi.web.routing import RateLimit

NOTES = "/api/v1/reference/notes"
ECHO = "/api/v1/reference/echo"
ECHO_BODY = {"name": "n", "address": {"city": "c", "postcode": "123456"}, "lines": []}
PROBLEM = "application/problem+json"
ORIGIN = "https://app.example"


def overrides(**sections):
    """Indirect parametrisation of the ``config_overrides`` fixture for one test."""
    return pytest.mark.parametrize("config_overrides", [sections], indirect=True)


@pytest.fixture
def config_overrides(request):
    return getattr(request, "param", {})


# -- request id ---------------------------------------------------------------------------------

async def test_request_id_in_and_out(client):
    for valid in ["abc-123.x:y_z", "x" * 128]:
        resp = await client.get("/health", headers={"X-Request-ID": valid})
        assert resp.headers["X-Request-ID"] == valid
    # Replaced, not trusted: it ends up in logs and in other services' headers.
    for invalid in ["has space", "semi;colon", "x" * 129, "é", ""]:
        resp = await client.get("/health", headers={"X-Request-ID": invalid})
        assert resp.headers["X-Request-ID"] != invalid
        uuid.UUID(hex=resp.headers["X-Request-ID"])
    first = (await client.get("/health")).headers["X-Request-ID"]
    second = (await client.get("/health")).headers["X-Request-ID"]
    assert first != second
    uuid.UUID(hex=first)


async def test_request_id_is_in_the_problem_body(client):
    resp = await client.get(f"{NOTES}/{uuid.uuid4()}", headers={"X-Request-ID": "trace-1"})
    assert resp.status == 404
    assert resp.headers["X-Request-ID"] == "trace-1"
    assert (await resp.json(content_type=PROBLEM))["request_id"] == "trace-1"


@overrides(http={"access_log": True})
async def test_access_log_records_carry_the_request_id(client, caplog):
    caplog.set_level(logging.INFO, logger="propmubi.access")
    await client.get(f"{NOTES}/{uuid.uuid4()}?x=1", headers={"X-Request-ID": "log-me"})
    records = [r for r in caplog.records if r.name == "propmubi.access"]
    assert len(records) == 1
    record = records[0]
    assert record.request_id == "log-me"
    assert (record.method, record.status) == ("GET", 404)
    assert record.route == "/api/v1/reference/notes/{id}"
    assert record.path.startswith(NOTES)
    assert record.duration_ms >= 0
    assert "?x=1" in record.getMessage()


async def test_access_log_off_by_config(client, caplog):
    caplog.set_level(logging.INFO, logger="propmubi.access")
    await client.get("/health")
    assert not [r for r in caplog.records if r.name == "propmubi.access"]


@overrides(http={"access_log": True})
async def test_access_log_redacts_personal_query_values(client, caplog):
    caplog.set_level(logging.INFO, logger="propmubi.access")
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger("propmubi.access").addHandler(handler)
    try:
        await client.get("/console/users?q=%2B919876543210&page=2")
        await client.get(f"{NOTES}?Phone=9876543210&email=a%40b.example&token=t0k3n"
                         "&code=424242&x=1&q")
    finally:
        logging.getLogger("propmubi.access").removeHandler(handler)
    messages = [r.getMessage() for r in caplog.records if r.name == "propmubi.access"]
    assert len(messages) == 2
    assert "/console/users?q=[redacted]&page=2" in messages[0]
    assert (f"{NOTES}?Phone=[redacted]&email=[redacted]&token=[redacted]&code=[redacted]"
            "&x=1&q=[redacted]") in messages[1]
    logged = stream.getvalue() + "".join(messages)
    for secret in ["919876543210", "9876543210", "a%40b", "a@b", "t0k3n", "424242"]:
        assert secret not in logged


# -- security headers ---------------------------------------------------------------------------

API_SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


async def test_security_headers_on_api_responses(client):
    for path in ["/health", NOTES, "/api/v1/nope", "/api/v1/reference/boom", "/consoles"]:
        resp = await client.get(path)
        for name, value in API_SECURITY.items():
            assert resp.headers[name] == value, path
        csp = resp.headers["Content-Security-Policy"]
        assert csp == "default-src 'none'; frame-ancestors 'none'", path
        assert "Strict-Transport-Security" not in resp.headers  # plain HTTP here


async def test_security_headers_on_console_responses(client):
    for headers in [{}, {"X-Test-Staff-Role": "staff"}]:
        resp = await client.get("/console/reference/notes", headers=headers)
        for name, value in API_SECURITY.items():
            assert resp.headers[name] == value
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp


# -- CORS ---------------------------------------------------------------------------------------

cors = overrides(http={"cors_origins": [ORIGIN]})


@cors
async def test_cors_allowed_origin(client):
    resp = await client.get(NOTES, headers={"Origin": ORIGIN})
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in resp.headers.getall("Vary")
    assert "X-Request-ID" in resp.headers["Access-Control-Expose-Headers"]


@cors
async def test_cors_disallowed_origin_gets_no_cors_headers(client):
    for headers in [{"Origin": "https://evil.example"}, {}]:
        resp = await client.get(NOTES, headers=headers)
        assert resp.status == 200
        assert not [h for h in resp.headers if h.lower().startswith("access-control-")]
    # Nor is its preflight answered: it falls through to the router.
    resp = await client.options(NOTES, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert resp.status == 405
    assert "Access-Control-Allow-Origin" not in resp.headers


@cors
async def test_cors_preflight(client):
    resp = await client.options(NOTES, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Content-Type, X-Request-ID"})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert resp.headers["Access-Control-Allow-Headers"] == "Content-Type, X-Request-ID"
    assert int(resp.headers["Access-Control-Max-Age"]) > 0
    assert resp.headers["X-Request-ID"]  # still through the edge middleware


@cors
async def test_cors_headers_on_error_responses(client):
    # A browser hides a response without CORS headers: the caller could not read its 422.
    for method, path, status in [("GET", "/api/v1/nope", 404), ("GET", f"{NOTES}/1", 422),
                                 ("GET", "/api/v1/reference/boom", 500), ("POST", ECHO, 415),
                                 ("GET", "/api/v1/reference/slow?seconds=2", 504)]:
        resp = await client.request(method, path, headers={"Origin": ORIGIN})
        assert resp.status == status
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert resp.content_type == PROBLEM
        assert (await resp.json(content_type=PROBLEM))["status"] == status
    resp = await client.get("/api/v1/reference/moved", allow_redirects=False,
                            headers={"Origin": ORIGIN})
    assert resp.status == 302
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN


@overrides(http={"cors_origins": ["*"]})
async def test_cors_wildcard_never_allows_credentials(client):
    resp = await client.get(NOTES, headers={"Origin": "https://any.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in resp.headers


@pytest.mark.parametrize("config_overrides", [{"http": {"cors_origins": [ORIGIN]}},
                                              {"http": {"cors_origins": ["*"]}}],
                         indirect=True)
async def test_console_is_never_cors_enabled(client):
    # Its cookie session must not be readable, or its forms posted, from another site.
    for path in ["/console", "/console/login", "/console/reference/notes"]:
        for headers in [{}, {"X-Test-Staff-Role": "staff"}]:
            resp = await client.get(path, headers={"Origin": ORIGIN, **headers},
                                    allow_redirects=False)
            assert not [h for h in resp.headers if h.lower().startswith("access-control-")], \
                (path, resp.status, dict(resp.headers))
        resp = await client.options(path, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type"})
        assert resp.status != 204, path
        assert not [h for h in resp.headers if h.lower().startswith("access-control-")], \
            (path, resp.status, dict(resp.headers))
    # The API next to it still is.
    resp = await client.get(NOTES, headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" in resp.headers


# -- body size ----------------------------------------------------------------------------------

small_bodies = overrides(http={"max_body_bytes": 100})


@small_bodies
async def test_declared_oversize_body_is_refused_unread(client):
    resp = await client.post(ECHO, data=b"x" * 101, headers={"Content-Type": "application/json"})
    assert resp.status == 413
    problem = await resp.json(content_type=PROBLEM)
    assert problem["type"] == "https://propmubi.dev/problems/payload-too-large"
    assert "100" in problem["detail"]


@small_bodies
async def test_chunked_oversize_body_is_cut_while_read(client):
    async def chunks():
        for _ in range(10):
            yield b" " * 30

    resp = await client.post(ECHO, data=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert resp.content_type == PROBLEM
    assert (await resp.json(content_type=PROBLEM))["status"] == 413


@small_bodies
async def test_body_at_the_limit_is_accepted(client):
    body = orjson.dumps(ECHO_BODY).ljust(100)  # JSON allows the trailing spaces
    resp = await client.post(ECHO, data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()


# -- timeouts -----------------------------------------------------------------------------------

async def test_route_declared_timeout_gives_504(client):
    resp = await client.get("/api/v1/reference/slow", params={"seconds": "2"})
    assert resp.status == 504
    problem = await resp.json(content_type=PROBLEM)
    assert problem["type"] == "https://propmubi.dev/problems/timeout"
    assert problem["detail"] == "no response within 0.5s"
    resp = await client.get("/api/v1/reference/slow", params={"seconds": "0"})
    assert resp.status == 200
    assert await resp.json() == {"slept": 0.0}


@overrides(http={"request_timeout": 0.2})
async def test_config_default_timeout_gives_504(client):
    resp = await client.get("/api/v1/reference/sleep", params={"seconds": "2"})
    assert resp.status == 504
    assert (await resp.json(content_type=PROBLEM))["detail"] == "no response within 0.2s"


async def test_handlers_own_timeout_and_redirects(client):
    resp = await client.get("/api/v1/reference/upstream")
    assert resp.status == 504
    assert "did not answer" in (await resp.json(content_type=PROBLEM))["detail"]
    # A raised redirect is a response: it passes with the usual headers.
    resp = await client.get("/api/v1/reference/moved", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == NOTES
    assert resp.headers["X-Request-ID"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


# -- rate limits --------------------------------------------------------------------------------

def assert_limited(resp, limit):
    assert resp.status == 429
    assert resp.content_type == PROBLEM
    assert resp.headers["RateLimit-Limit"] == str(limit)
    assert resp.headers["RateLimit-Remaining"] == "0"
    reset = int(resp.headers["Retry-After"])
    assert 1 <= reset <= 60
    assert resp.headers["RateLimit-Reset"] == str(reset)


@overrides(ratelimit={"per_ip": "3/minute"})
async def test_default_per_ip_limit(client):
    remaining = []
    for _ in range(3):
        resp = await client.get(NOTES)
        assert resp.status == 200
        assert resp.headers["RateLimit-Limit"] == "3"
        remaining.append(int(resp.headers["RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    resp = await client.get(f"{NOTES}/{uuid.uuid4()}")  # the default limit spans every route
    assert_limited(resp, 3)
    problem = await resp.json(content_type=PROBLEM)
    assert problem["type"] == "https://propmubi.dev/problems/rate-limited"


@overrides(ratelimit={"per_ip": "3/minute"})
async def test_route_declared_limit_overrides_the_default(client):
    for i in range(5):
        resp = await client.post(NOTES, json={"text": f"n{i}"})
        assert resp.status == 201
        assert resp.headers["RateLimit-Limit"] == "5"
    assert_limited(await client.post(NOTES, json={"text": "six"}), 5)
    # The declared limit has its own counter: the default one is untouched.
    assert (await client.get(NOTES)).headers["RateLimit-Remaining"] == "2"


@overrides(ratelimit={"per_ip": "100/minute", "per_subject": "2/minute"})
async def test_per_subject_limit(client):
    alice = {"X-Test-Subject": "alice"}
    for _ in range(2):
        assert (await client.get(NOTES, headers=alice)).status == 200
    assert_limited(await client.get(NOTES, headers=alice), 2)
    # Another subject from the same address has its own budget.
    resp = await client.get(NOTES, headers={"X-Test-Subject": "bob"})
    assert resp.status == 200
    assert resp.headers["RateLimit-Remaining"] == "1"  # the tightest of ip and subject


@overrides(ratelimit={"per_ip": "1/minute"})
async def test_operational_exempt_and_console_routes_are_never_limited(client):
    staff = {"X-Test-Staff-Role": "staff"}
    for _ in range(3):
        for path in ["/health", "/ready", "/metrics", "/api/v1/openapi.json",
                     "/api/v1/reference/sleep", "/api/v1/reference/boom", "/nope",
                     "/console/reference/notes"]:
            resp = await client.get(path, headers=staff)
            assert resp.status != 429, path
            assert "RateLimit-Limit" not in resp.headers, path


@overrides(ratelimit={"per_ip": "1/minute", "enabled": False})
async def test_rate_limits_can_be_disabled(client):
    for _ in range(3):
        resp = await client.get(NOTES)
        assert resp.status == 200
        assert "RateLimit-Limit" not in resp.headers


@overrides(ratelimit={"per_ip": "5/minute"})
async def test_refused_requests_still_report_the_limit(client):
    resp = await client.get(f"{NOTES}/not-a-uuid")
    assert resp.status == 422
    assert resp.headers["RateLimit-Remaining"] == "4"


@overrides(ratelimit={"per_ip": "1/minute"})
async def test_forwarded_for_is_ignored_unless_trusted(client):
    assert (await client.get(NOTES, headers={"X-Forwarded-For": "10.0.0.1"})).status == 200
    resp = await client.get(NOTES, headers={"X-Forwarded-For": "10.0.0.2"})
    assert resp.status == 429


@overrides(ratelimit={"per_ip": "1/minute"}, http={"trust_forwarded": True})
async def test_forwarded_for_is_the_client_behind_a_trusted_proxy(client):
    assert (await client.get(NOTES, headers={"X-Forwarded-For": "10.0.0.1"})).status == 200
    assert (await client.get(NOTES, headers={"X-Forwarded-For": "10.0.0.2"})).status == 200
    # Entries before our proxy's own are the client's word: a fresh one per request must not
    # buy a fresh budget.
    resp = await client.get(NOTES, headers={"X-Forwarded-For": "6.6.6.6, 10.0.0.1"})
    assert resp.status == 429


# -- the limiter and the log format, without the app ---------------------------------------------

async def test_limiter_counts_in_expiring_windows(test_servers, redis_prefix):
    redis = create_redis(RedisSection(url=test_servers.redis_url))
    limiter = RateLimiter(redis, Keys(redis_prefix))
    limit = RateLimit(2, 60)
    try:
        first = await limiter.check("s", [("ip", "1.2.3.4", limit)])
        assert first["RateLimit-Remaining"] == "1"
        await limiter.check("s", [("ip", "1.2.3.4", limit)])
        with pytest.raises(TooManyRequests) as refused:
            await limiter.check("s", [("ip", "1.2.3.4", limit)])
        assert refused.value.headers["Retry-After"] == refused.value.headers["RateLimit-Reset"]
        # Another identity, or another scope, counts apart.
        assert (await limiter.check("s", [("ip", "5.6.7.8", limit)]))["RateLimit-Remaining"] == "1"
        assert (await limiter.check("t", [("ip", "1.2.3.4", limit)]))["RateLimit-Remaining"] == "1"
        keys = [k async for k in redis.scan_iter(match=f"{redis_prefix}*")]
        assert len(keys) == 3
        for key in keys:  # every window's counter goes away by itself
            assert 0 < await redis.ttl(key) <= 61
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{redis_prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_limiter_fails_open_without_redis(tmp_path, caplog):
    redis = create_redis(RedisSection(url=f"unix://{tmp_path}/none.sock", socket_timeout=1))
    limiter = RateLimiter(redis, Keys("x:"))
    errors = "propmubi_http_rate_limiter_errors_total"
    before = REGISTRY.get_sample_value(errors)
    try:
        assert await limiter.check("s", [("ip", "1.2.3.4", RateLimit(1, 60))] * 3) == {}
    finally:
        await redis.aclose()
    assert REGISTRY.get_sample_value(errors) == before + 1
    assert "rate limiter skipped" in caplog.text


def test_json_log_lines_carry_the_request_id():
    record = logging.LogRecord("propmubi.access", logging.INFO, __file__, 1, "GET %s", ("/x",),
                               None)
    record.status = 200
    token = REQUEST_ID.set("rid-7")
    try:
        line = orjson.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "rid-7"
    assert (line["msg"], line["status"], line["level"]) == ("GET /x", 200, "INFO")
    assert line["logger"] == "propmubi.access" and line["ts"].endswith("Z")
    try:
        raise ValueError("inner")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "m", (), sys.exc_info())
    assert "ValueError: inner" in orjson.loads(JsonFormatter().format(record))["exc"]
    assert "request_id" not in orjson.loads(JsonFormatter().format(record))
