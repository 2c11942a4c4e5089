"""The rate limiter counts exactly when many requests' checks share one Redis round trip; who
is counted (authenticate first, per subject, a ceiling per address)."""

import asyncio

import pytest
from aiohttp import web

import tests.refplugin
from propmubi import hookimpl
from propmubi.config import ConfigError, load_config
from propmubi.errors import TooManyRequests
from propmubi.keys import Keys
from propmubi.redis import create_redis
from propmubi.types import PluginInfo, Principal
from propmubi.web.appkeys import PRINCIPAL, SUBJECT
from propmubi.web.ratelimit import RateLimit, RateLimiter
from propmubi.web.routing import Routes


async def test_concurrent_checks_are_counted_exactly_once_each(services):
    limiter = RateLimiter(services.redis, services.keys)
    limit = RateLimit(5, 60)

    async def one():
        try:
            headers = await limiter.check("batch", [("ip", "10.0.0.1", limit)])
        except TooManyRequests as exc:
            assert exc.headers["RateLimit-Remaining"] == "0"
            return None
        return int(headers["RateLimit-Remaining"])

    results = await asyncio.gather(*(one() for _ in range(12)))
    allowed = sorted(r for r in results if r is not None)
    assert allowed == [0, 1, 2, 3, 4]  # five pass, each with its own count
    assert results.count(None) == 7
    # Another identity in the same batch has its own counter.
    other = await limiter.check("batch", [("ip", "10.0.0.2", limit)])
    assert other["RateLimit-Remaining"] == "4"


async def test_a_cancelled_request_does_not_break_its_batch(services):
    limiter = RateLimiter(services.redis, services.keys)
    limit = RateLimit(100, 60)
    first = asyncio.ensure_future(limiter.check("cancel", [("ip", "a", limit)]))
    second = asyncio.ensure_future(limiter.check("cancel", [("ip", "a", limit)]))
    await asyncio.sleep(0)
    first.cancel()
    headers = await second
    assert headers["RateLimit-Limit"] == "100"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_redis_unreachable_lets_every_waiter_through(config):
    broken = create_redis(config.redis.__class__(url="unix:///nonexistent/redis.sock",
                                                 socket_timeout=0.5))
    limiter = RateLimiter(broken, Keys("x:"))
    results = await asyncio.gather(*(limiter.check("down", [("ip", "a", RateLimit(1, 60))])
                                     for _ in range(3)))
    assert results == [{}, {}, {}]
    await broken.aclose()


# -- who is counted: authenticate first, per subject, a per-address ceiling -----------------------

class SignedIn:
    """A test plugin: ``X-Sub: <id>`` signs the request in as that subject (role ``builder``);
    a protected route and a public one, both with a route limit of 2 a minute."""

    @hookimpl
    def propmubi_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="limittest")

    @hookimpl
    def propmubi_middlewares(self, config):
        @web.middleware
        async def identify(request, handler):
            subject = request.headers.get("X-Sub")
            if subject:
                request[PRINCIPAL] = Principal(subject, ["builder"])
                request[SUBJECT] = subject
            return await handler(request)

        return [identify]

    @hookimpl
    def propmubi_api_routes(self, config):
        routes = Routes()

        @routes.get("/limittest/kyc", roles=["builder"], rate_limit="2/minute")
        async def kyc(request):
            return {"ok": True}

        @routes.get("/limittest/public")
        async def public(request):
            return {"ok": True}

        return routes


KYC, PUBLIC = "/api/v1/limittest/kyc", "/api/v1/limittest/public"


def as_(subject):
    return {"X-Sub": subject}


@pytest.fixture
def extra_plugins():
    return [tests.refplugin, SignedIn()]


@pytest.fixture
def config_overrides(request):
    return getattr(request, "param", {})


def overrides(**sections):
    return pytest.mark.parametrize("config_overrides", [sections], indirect=True)


@overrides(ratelimit={"per_ip": "2/minute"})
async def test_no_token_on_a_protected_route_is_401_even_over_the_address_limit(client):
    for _ in range(2):
        assert (await client.get(PUBLIC)).status == 200
    assert (await client.get(PUBLIC)).status == 429  # the address is over its limit
    for _ in range(5):
        response = await client.get(KYC)
        assert response.status == 401, await response.text()
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "RateLimit-Limit" not in response.headers
    # Nothing was counted: a signed-in caller from the same address has the whole budget.
    response = await client.get(KYC, headers=as_("builder-1"))
    assert response.status == 200
    assert response.headers["RateLimit-Remaining"] == "1"


async def test_signed_in_callers_behind_one_address_each_have_the_route_limit(client):
    for _ in range(2):
        assert (await client.get(KYC, headers=as_("fuzzer"))).status == 200
    response = await client.get(KYC, headers=as_("fuzzer"))
    assert response.status == 429
    assert response.headers["RateLimit-Limit"] == "2"
    # A real builder on the same office network is not refused on his first call.
    response = await client.get(KYC, headers=as_("builder-1"))
    assert response.status == 200
    assert response.headers["RateLimit-Remaining"] == "1"


@overrides(ratelimit={"ip_ceiling_factor": 2})
async def test_an_address_has_a_ceiling_for_all_its_signed_in_callers(client):
    for subject in ("a", "b"):
        for _ in range(2):
            assert (await client.get(KYC, headers=as_(subject))).status == 200
    response = await client.get(KYC, headers=as_("c"))  # 2 x the route's 2/minute reached
    assert response.status == 429
    assert response.headers["RateLimit-Limit"] == "4"


@overrides(ratelimit={"per_ip": "2/minute", "per_subject": "100/minute"})
async def test_anonymous_traffic_does_not_use_up_signed_in_callers_budget(client):
    for _ in range(2):
        assert (await client.get(PUBLIC)).status == 200
    assert (await client.get(PUBLIC)).status == 429
    response = await client.get(PUBLIC, headers=as_("builder-1"))
    assert response.status == 200
    assert response.headers["RateLimit-Limit"] == "100"  # the subject's, not the address's


def test_the_ceiling_factor_is_validated():
    with pytest.raises(ConfigError, match="ip_ceiling_factor"):
        load_config(environ={"PROPMUBI_RATELIMIT__IP_CEILING_FACTOR": "0"},
                    use_default_path=False)
