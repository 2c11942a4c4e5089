"""SMS providers: the HTTP one against a real loopback server, and the console one's rules.

A provider factory takes the consuming plugin's context; each test builds auth's with the
settings it needs, on the test's real services."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from propmubi.config import ConfigError
from propmubi.context import PluginContext
from propmubi.services import Services
from propmubi_plugins.auth.settings import AuthSettings
from propmubi_plugins.auth.sms import ConsoleSms, HttpSms, SmsError
from tests.plugins.auth.conftest import AUTH_SETTINGS, PHONE, verify

SID = "AC0123456789"
TOKEN = "s3cret-token"


@attrs.define
class FakeTwilio:
    """A real HTTP server on 127.0.0.1 that answers like the provider's Messages API; each
    test scripts its answers."""

    base_url: str = ""
    script: list[Any] = attrs.Factory(list)  # per request: a status, or "slow"
    received: list[dict[str, Any]] = attrs.Factory(list)

    async def handle(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.received.append({"path": request.path, "form": form,
                              "auth": request.headers.get("Authorization", "")})
        action = self.script.pop(0) if self.script else 201
        if action == "slow":
            await asyncio.sleep(2)
            action = 201
        if action == 201:
            return web.json_response({"sid": "SM1", "status": "queued"}, status=201)
        return web.json_response({"message": "nope"}, status=action)


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    server = FakeTwilio()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base_url = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


def http_settings(twilio: FakeTwilio, **changes: Any) -> dict[str, Any]:
    return {**AUTH_SETTINGS, "sms_provider": "http", "sms_http_base_url": twilio.base_url,
            "sms_http_account_sid": SID, "sms_http_auth_token": TOKEN,
            "sms_http_from": "+15005550006", "sms_http_timeout": 0.3,
            "sms_http_backoff": 0.01, **changes}


def ctx_with(services: Services, settings: dict[str, Any], **sections: Any
             ) -> PluginContext[AuthSettings, Any]:
    """Auth's context with these ``[plugins.auth]`` settings (and configuration sections)."""
    config = services.config.evolve(plugins={"settings": {"auth": settings}}, **sections)
    return PluginContext.create("auth", AuthSettings(**settings),
                                attrs.evolve(services, config=config))


def attempts(result: str) -> float:
    return REGISTRY.get_sample_value("propmubi_auth_sms_attempts_total",
                                     {"provider": "http", "result": result}) or 0.0


async def test_http_provider_posts_the_form_with_basic_auth(services, twilio):
    before = attempts("ok")
    await HttpSms(ctx_with(services, http_settings(twilio))).send(PHONE, "123456 is your code")
    [request] = twilio.received
    assert request["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request["form"] == {"To": PHONE, "From": "+15005550006",
                               "Body": "123456 is your code"}
    assert request["auth"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert attempts("ok") == before + 1


async def test_http_provider_retries_5xx(services, twilio):
    before = attempts("5xx")
    twilio.script = [503, 500]
    await HttpSms(ctx_with(services, http_settings(twilio))).send(PHONE, "hi")
    assert len(twilio.received) == 3
    assert attempts("5xx") == before + 2


async def test_http_provider_gives_up_after_its_attempts(services, twilio):
    twilio.script = [500, 502, 503, 504]
    with pytest.raises(SmsError, match="3 times"):
        await HttpSms(ctx_with(services, http_settings(twilio))).send(PHONE, "hi")
    assert len(twilio.received) == 3


async def test_http_provider_times_out_and_retries(services, twilio):
    before = attempts("error")
    twilio.script = ["slow"]
    await HttpSms(ctx_with(services, http_settings(twilio))).send(PHONE, "hi")
    assert len(twilio.received) == 2
    assert attempts("error") == before + 1
    twilio.script = ["slow", "slow"]
    with pytest.raises(SmsError, match="Timeout"):
        settings = http_settings(twilio, sms_http_attempts=2)
        await HttpSms(ctx_with(services, settings)).send(PHONE, "x")


async def test_http_provider_does_not_retry_a_4xx(services, twilio):
    twilio.script = [400]
    with pytest.raises(SmsError, match="HTTP 400"):
        await HttpSms(ctx_with(services, http_settings(twilio))).send(PHONE, "hi")
    assert len(twilio.received) == 1


async def test_http_provider_connection_refused(services):
    settings = {**AUTH_SETTINGS, "sms_http_base_url": "http://127.0.0.1:9",
                "sms_http_account_sid": SID, "sms_http_auth_token": TOKEN,
                "sms_http_from": "+15005550006", "sms_http_backoff": 0.01}
    with pytest.raises(SmsError, match="3 times"):
        await HttpSms(ctx_with(services, settings)).send(PHONE, "hi")


async def test_http_provider_needs_its_settings(services):
    with pytest.raises(ConfigError, match=r"plugins\.auth\.sms_http_account_sid"):
        HttpSms(ctx_with(services, dict(AUTH_SETTINGS)))


async def test_console_provider_is_refused_in_production(services):
    with pytest.raises(ConfigError, match="refused in production"):
        ConsoleSms(ctx_with(services, dict(AUTH_SETTINGS), app={"environment": "production"}))
    ConsoleSms(ctx_with(services, dict(AUTH_SETTINGS), app={"environment": "development"}))


@pytest.fixture
def auth_settings(twilio: FakeTwilio) -> dict[str, Any]:
    return http_settings(twilio)


async def test_the_started_context_sends_through_the_chosen_provider(services, twilio):
    sms = services.context("auth").state.sms
    assert isinstance(sms, HttpSms) and sms.url.startswith(twilio.base_url)
    await sms.send(PHONE, "hi")
    assert [r["form"]["Body"] for r in twilio.received] == ["hi"]


async def test_sign_in_through_the_http_provider(client, twilio):
    response = await client.post("/api/v1/auth/otp", json={"phone": PHONE})
    assert response.status == 202
    challenge = await response.json()
    code = twilio.received[-1]["form"]["Body"][:6]
    assert (await verify(client, challenge["challenge_id"], code)).status == 200


async def test_a_provider_outage_is_a_503(client, twilio):
    twilio.script = [500, 500, 500]
    response = await client.post("/api/v1/auth/otp", json={"phone": PHONE})
    assert response.status == 503
