"""OTP codes go out through the notifications plugin's SMS providers (one SMS stack):
``plugins.auth.sms_provider = "notifications"`` sends each code at once through
``plugins.notifications.sms_providers``, the primary first, a fallback only after a failure
that certainly sent nothing. The HTTP provider talks to a Twilio-compatible simulator on
loopback (tests/plugins/notifications/providers/simulators.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from propmubi.config import ConfigError
from propmubi.context import PluginContext
from propmubi.lifecycle import open_services
from propmubi.plugins import load_plugins
from propmubi_plugins.auth.settings import AuthSettings
from propmubi_plugins.notifications.otp import otp_sms_factory
from tests.plugins.auth.conftest import AUTH_SETTINGS, PHONE, console_sms, sms_outbox, verify
from tests.plugins.notifications.providers.simulators import TwilioSimulator

TEMPLATE = "1107169000000000001"


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioSimulator]:
    async with TwilioSimulator.running() as sim:
        yield sim


@pytest.fixture
def sms_providers() -> list[str]:
    return ["http_sms", "console_sms"]


@pytest.fixture
def notifications_settings(twilio: TwilioSimulator, sms_providers: list[str]
                           ) -> dict[str, Any]:
    http_sms = attrs.asdict(twilio.settings(timeout=0.5))
    return {"sms_providers": sms_providers, "http_sms": http_sms}


@pytest.fixture
def auth_settings() -> dict[str, Any]:
    return {**AUTH_SETTINGS, "sms_template_id": TEMPLATE}


async def request_code(client: Any) -> Any:
    return await client.post("/api/v1/auth/otp", json={"phone": PHONE})


def code_of(body: str) -> str:
    return re.match(r"(\d{6}) ", body)[1]  # type: ignore[index]


async def test_sign_in_with_a_code_sent_through_the_http_provider(client, twilio):
    response = await request_code(client)
    assert response.status == 202
    [sent] = twilio.received
    assert sent["form"]["To"] == PHONE and sent["form"]["From"] == "PRPMBI"
    assert sent["form"]["DltTemplateId"] == TEMPLATE
    challenge = await response.json()
    code = code_of(sent["form"]["Body"])
    assert (await verify(client, challenge["challenge_id"], code)).status == 200
    assert sms_outbox(client) == []


async def test_a_retryable_failure_falls_back_to_the_next_provider(client, twilio):
    twilio.fail(1, 503)
    response = await request_code(client)
    assert response.status == 202
    assert len(twilio.received) == 1
    [(to, body)] = sms_outbox(client)
    assert to == PHONE
    challenge = await response.json()
    assert (await verify(client, challenge["challenge_id"], code_of(body))).status == 200


async def test_a_refused_number_does_not_fall_back(client, twilio):
    twilio.fail(1, 400, code=21211, message="The 'To' number is not a valid phone number.")
    response = await request_code(client)
    assert response.status == 503
    assert response.headers["Retry-After"] == "30"
    assert sms_outbox(client) == []


async def test_no_second_provider_after_a_request_that_may_have_been_sent(client, twilio):
    twilio.hang()
    response = await request_code(client)
    assert response.status == 503
    assert len(twilio.received) == 1
    assert sms_outbox(client) == []  # the first SMS may be on its way: never two codes


@pytest.mark.parametrize("sms_providers", [["http_sms"]])
async def test_an_outage_of_every_provider_is_a_503(client, twilio):
    twilio.fail(5, 500)
    response = await request_code(client)
    assert response.status == 503
    assert len(twilio.received) == 1  # one attempt: the caller may ask again


@pytest.mark.parametrize("sms_providers", [["console_sms"]])
async def test_development_codes_go_to_the_console_provider(client, twilio):
    assert (await request_code(client)).status == 202
    [message] = console_sms(client).outbox
    assert message.to == PHONE and message.template_id == TEMPLATE
    assert message.key.endswith(":sms") and message.data["type"] == "otp"  # in the ledger
    assert twilio.received == []


async def test_auth_refuses_to_start_without_the_notifications_plugin(migrated, extra_plugins):
    config = migrated.evolve(plugins={"enabled": ["auth"],
                                      "settings": {"auth": dict(AUTH_SETTINGS)}})
    with pytest.raises(ConfigError, match=r"plugins\.auth\.sms_provider"):
        async with open_services(config, load_plugins(config, extra=extra_plugins)):
            pass


async def test_the_factory_names_the_setting_when_notifications_is_missing(services):
    without = attrs.evolve(services, contexts={})
    ctx = PluginContext.create("auth", AuthSettings(**AUTH_SETTINGS), without)
    with pytest.raises(ConfigError, match=r"plugins\.auth\.sms_provider.*not enabled"):
        otp_sms_factory(ctx)
