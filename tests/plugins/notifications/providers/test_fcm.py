"""The ``fcm`` provider against loopback stand-ins of Google's token endpoint and FCM HTTP v1:
the service-account JWT is verified with the public key, the bearer token and the message's
JSON shape are checked, errors come back in FCM's documented format."""

from __future__ import annotations

import asyncio
import logging

import pytest

from propmubi.config import ConfigError
from propmubi_plugins.notifications.providers import FACTORIES
from propmubi_plugins.notifications.providers.base import Message, ProviderError
from propmubi_plugins.notifications.providers.fcm import FCM_SCOPE, apns_collapse_id
from tests.plugins.notifications.providers.simulators import FcmSimulator, ServiceAccount

DEVICE = "fcm-device-token-" + "x" * 40
KEY = "0190d1e2-0000-7000-8000-000000000003.push"


def push(**changes: object) -> Message:
    values: dict[str, object] = {"key": KEY, "channel": "push", "to": DEVICE,
                                 "subject": "Visit confirmed", "body": "See you on Friday.",
                                 "data": {"booking_id": "b-1", "screen": "visits"}}
    return Message(**{**values, **changes})  # type: ignore[arg-type]


def provider(notifications_ctx, fcm: FcmSimulator, **changes: object):
    return FACTORIES["fcm"](notifications_ctx(fcm=fcm.settings(**changes)))


async def test_sends_the_documented_message(notifications_ctx, fcm, service_account):
    sender = provider(notifications_ctx, fcm)
    assert (sender.name, sender.channel) == ("fcm", "push")
    receipt = await sender.send(push())
    assert receipt.provider == "fcm"
    assert receipt.provider_message_id.startswith("projects/propmubi-test/messages/")
    [request] = fcm.received
    assert request["body"] == {"message": {
        "token": DEVICE,
        "notification": {"title": "Visit confirmed", "body": "See you on Friday."},
        "data": {"booking_id": "b-1", "screen": "visits"},
        "android": {"collapse_key": KEY},
        "apns": {"headers": {"apns-collapse-id": KEY}},
    }}
    assert request["headers"]["Authorization"].startswith("Bearer ya29.sim-")
    [claims] = fcm.assertions
    assert claims["iss"] == service_account.client_email
    assert claims["scope"] == FCM_SCOPE and claims["aud"] == fcm.token_url


def test_a_long_key_is_hashed_to_fit_apns():
    assert apns_collapse_id("k" * 64) == "k" * 64
    long = apns_collapse_id("k" * 65)
    assert len(long) == 64 and long == apns_collapse_id("k" * 65)


async def test_the_token_is_cached(notifications_ctx, fcm):
    sender = provider(notifications_ctx, fcm)
    await asyncio.gather(*(sender.send(push()) for _ in range(3)))
    await sender.send(push())
    assert fcm.token_requests == 1
    assert len({r["headers"]["Authorization"] for r in fcm.received}) == 1


async def test_the_token_is_renewed_before_it_expires(notifications_ctx, fcm):
    fcm.token_lifetime = 4  # short lives are renewed after half of it: 2 s
    sender = provider(notifications_ctx, fcm)
    await sender.send(push())
    await sender.send(push())
    assert fcm.token_requests == 1
    await asyncio.sleep(2.2)
    await sender.send(push())
    assert fcm.token_requests == 2


async def test_a_revoked_token_is_dropped_and_the_next_send_gets_a_new_one(notifications_ctx,
                                                                          fcm):
    sender = provider(notifications_ctx, fcm)
    await sender.send(push())
    fcm.revoke_tokens()
    with pytest.raises(ProviderError, match="401") as caught:
        await sender.send(push())
    assert caught.value.retryable and not caught.value.maybe_sent
    await sender.send(push())
    assert fcm.token_requests == 2


async def test_a_refused_assertion_is_retryable_and_sends_nothing(notifications_ctx, fcm):
    stranger = ServiceAccount.generate(fcm.account.client_email)  # the wrong key
    sender = provider(notifications_ctx, fcm, private_key=stranger.private_key)
    with pytest.raises(ProviderError, match="token exchange failed: HTTP 400") as caught:
        await sender.send(push())
    assert caught.value.retryable and not caught.value.maybe_sent
    assert fcm.received == []


async def test_an_unreachable_token_endpoint_is_not_maybe_sent(notifications_ctx, fcm):
    sender = provider(notifications_ctx, fcm, token_url="http://127.0.0.1:9/token")
    with pytest.raises(ProviderError, match="no access token") as caught:
        await sender.send(push())
    assert caught.value.retryable and not caught.value.maybe_sent


@pytest.mark.parametrize("code", ["UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH"])
async def test_refusals_of_the_message_are_final(notifications_ctx, fcm, code):
    fcm.fail(1, code)
    with pytest.raises(ProviderError, match=code) as caught:
        await provider(notifications_ctx, fcm).send(push())
    assert not caught.value.retryable and not caught.value.maybe_sent
    # Only UNREGISTERED says the token is dead (the plugin then forgets it): a wrong
    # project_id (SENDER_ID_MISMATCH) or a bad payload must not wipe the device registry.
    assert caught.value.address_gone == (code == "UNREGISTERED")


async def test_an_unregistered_token(notifications_ctx, fcm):
    fcm.unregistered.add(DEVICE)
    with pytest.raises(ProviderError, match="HTTP 404 UNREGISTERED") as caught:
        await provider(notifications_ctx, fcm).send(push())
    assert not caught.value.retryable and caught.value.address_gone


@pytest.mark.parametrize("code", ["UNAVAILABLE", "INTERNAL", "QUOTA_EXCEEDED",
                                  "THIRD_PARTY_AUTH_ERROR"])
async def test_transient_errors_are_retryable(notifications_ctx, fcm, code):
    fcm.fail(1, code, retry_after="12")
    with pytest.raises(ProviderError, match=code) as caught:
        await provider(notifications_ctx, fcm).send(push())
    assert caught.value.retryable and not caught.value.maybe_sent
    assert caught.value.retry_after == 12.0


async def test_a_retry_after_date(notifications_ctx, fcm):
    fcm.fail(1, "QUOTA_EXCEEDED", retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    with pytest.raises(ProviderError) as caught:
        await provider(notifications_ctx, fcm).send(push())
    assert caught.value.retry_after == 0.0  # a date in the past: try now


async def test_a_timeout_after_sending_may_have_sent(notifications_ctx, fcm):
    sender = provider(notifications_ctx, fcm, timeout=0.3)
    await sender.access_token()
    fcm.hang()
    with pytest.raises(ProviderError, match="no answer") as caught:
        await sender.send(push())
    assert caught.value.maybe_sent


async def test_data_values_must_be_strings_for_fcm(notifications_ctx, fcm):
    # Message.data is typed str -> str; a number slipping through is FCM's INVALID_ARGUMENT.
    with pytest.raises(ProviderError, match="INVALID_ARGUMENT") as caught:
        await provider(notifications_ctx, fcm).send(push(data={"n": 12}))
    assert not caught.value.retryable


@pytest.mark.parametrize("key", ["project_id", "client_email", "private_key", "token_url",
                                 "base_url"])
async def test_missing_settings_are_named(notifications_ctx, fcm, key):
    with pytest.raises(ConfigError, match=rf"plugins\.notifications\.fcm\.{key}"):
        provider(notifications_ctx, fcm, **{key: ""})


async def test_an_unusable_key_is_named_without_being_shown(notifications_ctx, fcm):
    with pytest.raises(ConfigError, match=r"plugins\.notifications\.fcm\.private_key") as caught:
        provider(notifications_ctx, fcm, private_key="-----BEGIN PRIVATE KEY-----\nc2VjcmV0")
    assert "c2VjcmV0" not in str(caught.value)


async def test_escaped_newlines_of_the_json_key_file_are_accepted(notifications_ctx, fcm):
    escaped = fcm.account.private_key.replace("\n", "\\n")
    await provider(notifications_ctx, fcm, private_key=escaped).send(push())


async def test_nothing_secret_is_logged(notifications_ctx, fcm, caplog):
    caplog.set_level(logging.DEBUG)
    sender = provider(notifications_ctx, fcm)
    await sender.send(push())
    fcm.fail(1, "UNAVAILABLE")
    with pytest.raises(ProviderError):
        await sender.send(push())
    token = next(iter(fcm.tokens))
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records
                     if not r.name.startswith("aiohttp.access"))
    assert "fcm" in text
    key_body = fcm.account.private_key.splitlines()[1]
    for secret in (token, key_body, "eyJ"):  # the access token, the key, any JWT
        assert secret not in text
