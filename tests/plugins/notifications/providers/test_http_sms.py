"""The ``http_sms`` provider against a Twilio-compatible server on loopback: one attempt per
send, each outcome classified for the delivery loop; and its lookup (Twilio's Message list),
which settles an attempt that may have been accepted."""

from __future__ import annotations

import base64
import datetime as dt
import logging

import pytest

from propmubi.config import ConfigError
from propmubi_plugins.notifications.providers import FACTORIES
from propmubi_plugins.notifications.providers.base import Message, ProviderError
from propmubi_plugins.notifications.providers.http_sms import (
    LOOKUP_MAX_PAGES,
    LOOKUP_PAGE_SIZE,
    LOOKUP_SKEW,
)
from propmubi_plugins.notifications.providers.settings import HttpSmsSettings

PHONE = "+919812345678"
TEMPLATE = "1107169000000000001"


def sms(**changes: object) -> Message:
    values: dict[str, object] = {"key": "0190d1e2-0000-7000-8000-000000000002.sms",
                                 "channel": "sms", "to": PHONE,
                                 "body": "123456 is your Propmubi code."}
    return Message(**{**values, **changes})  # type: ignore[arg-type]


def provider(notifications_ctx, settings: HttpSmsSettings):
    return FACTORIES["http_sms"](notifications_ctx(http_sms=settings))


async def test_posts_the_form_with_basic_auth(notifications_ctx, twilio):
    http_sms = provider(notifications_ctx, twilio.settings())
    assert (http_sms.name, http_sms.channel) == ("http_sms", "sms")
    receipt = await http_sms.send(sms())
    [request] = twilio.received
    assert request["path"] == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert request["form"] == {"To": PHONE, "From": "PRPMBI",
                               "Body": "123456 is your Propmubi code."}
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(
        f"{twilio.account_sid}:{twilio.auth_token}".encode()).decode()
    assert receipt.provider == "http_sms"
    assert receipt.provider_message_id.startswith("SM") and len(receipt.provider_message_id) == 34
    # Twilio documents no idempotency header: none is invented.
    assert not any("idempotency" in h.lower() for h in request["headers"])


async def test_the_dlt_template_id_is_a_form_field(notifications_ctx, twilio):
    await provider(notifications_ctx, twilio.settings()).send(sms(template_id=TEMPLATE))
    assert twilio.received[0]["form"]["DltTemplateId"] == TEMPLATE
    await provider(notifications_ctx, twilio.settings(template_field="")).send(
        sms(template_id=TEMPLATE))
    assert "DltTemplateId" not in twilio.received[1]["form"]


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_5xx_is_retryable_and_one_attempt(notifications_ctx, twilio, status):
    twilio.fail(3, status)
    with pytest.raises(ProviderError, match=f"HTTP {status}") as caught:
        await provider(notifications_ctx, twilio.settings()).send(sms())
    assert caught.value.retryable and not caught.value.maybe_sent
    assert len(twilio.received) == 1


async def test_a_429_is_retryable_with_its_retry_after(notifications_ctx, twilio):
    twilio.fail(1, 429, code=20429, message="Too Many Requests", retry_after="7")
    with pytest.raises(ProviderError, match="20429") as caught:
        await provider(notifications_ctx, twilio.settings()).send(sms())
    assert caught.value.retryable and not caught.value.maybe_sent
    assert caught.value.retry_after == 7.0


async def test_a_4xx_is_final_with_twilios_error(notifications_ctx, twilio):
    twilio.fail(1, 400, code=21211, message="The 'To' number +91981 is not a valid phone "
                                             "number.")
    with pytest.raises(ProviderError, match="21211: The 'To' number") as caught:
        await provider(notifications_ctx, twilio.settings()).send(sms())
    assert not caught.value.retryable and not caught.value.maybe_sent


async def test_refused_credentials_are_retryable(notifications_ctx, twilio):
    # The gateway refuses us, not the message: a fallback provider may still send it.
    with pytest.raises(ProviderError, match="HTTP 401, error 20003") as caught:
        await provider(notifications_ctx, twilio.settings(auth_token="wrong")).send(sms())
    assert caught.value.retryable and not caught.value.maybe_sent


async def test_connection_refused_is_retryable_and_not_sent(notifications_ctx, twilio):
    settings = twilio.settings(base_url="http://127.0.0.1:9")
    with pytest.raises(ProviderError, match="not sent") as caught:
        await provider(notifications_ctx, settings).send(sms())
    assert caught.value.retryable and not caught.value.maybe_sent


async def test_a_timeout_after_sending_may_have_sent(notifications_ctx, twilio):
    twilio.hang()
    with pytest.raises(ProviderError, match="no answer") as caught:
        await provider(notifications_ctx, twilio.settings(timeout=0.3)).send(sms())
    assert caught.value.retryable and caught.value.maybe_sent
    assert len(twilio.received) == 1  # it did arrive: a resend could be a duplicate


@pytest.mark.parametrize("key", ["base_url", "account_sid", "auth_token", "sender"])
async def test_missing_settings_are_named(notifications_ctx, twilio, key):
    settings = twilio.settings(**{key: ""})
    with pytest.raises(ConfigError, match=rf"plugins\.notifications\.http_sms\.{key}"):
        provider(notifications_ctx, settings)


async def test_nothing_secret_is_logged(notifications_ctx, twilio, caplog):
    caplog.set_level(logging.DEBUG)
    http_sms = provider(notifications_ctx, twilio.settings())
    await http_sms.send(sms())
    twilio.fail(1, 503)
    with pytest.raises(ProviderError):
        await http_sms.send(sms())
    with pytest.raises(ProviderError):
        await provider(notifications_ctx, twilio.settings(auth_token="other-secret")).send(sms())
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records
                     if not r.name.startswith("aiohttp.access"))  # the simulator's log
    assert "http_sms" in text
    basic = base64.b64encode(f"{twilio.account_sid}:{twilio.auth_token}".encode()).decode()
    for secret in (twilio.auth_token, "other-secret", basic, "123456"):
        assert secret not in text


# -- lookup: did Twilio accept this message? (settling an ambiguous attempt) ----------------

def minutes_ago(n: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=n)


async def test_lookup_finds_the_message_it_sent(notifications_ctx, twilio):
    http_sms = provider(notifications_ctx, twilio.settings())
    assert http_sms.dedupes is False  # a resend is a second SMS: ask instead
    since = minutes_ago(1)
    receipt = await http_sms.send(sms())
    found = await http_sms.lookup(sms(), since)
    assert found == receipt  # the same sid
    [request] = twilio.lookups
    assert request["path"] == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert request["query"] == {"To": PHONE, "From": "PRPMBI",
                                "DateSent>": f"{since - LOOKUP_SKEW:%Y-%m-%d}",
                                "PageSize": str(LOOKUP_PAGE_SIZE)}
    assert request["headers"]["Authorization"] == twilio.received[0]["headers"]["Authorization"]
    assert len(twilio.received) == 1  # nothing sent by the lookup


async def test_lookup_matches_the_body_and_the_recipient(notifications_ctx, twilio):
    http_sms = provider(notifications_ctx, twilio.settings())
    since = minutes_ago(1)
    twilio.add_message(PHONE, "654321 is your Propmubi code.")  # another code
    twilio.add_message("+919800000000", sms().body)  # the same text to someone else
    twilio.add_message(PHONE, sms().body, sender="OTHER")  # another sender's
    assert await http_sms.lookup(sms(), since) is None
    sid = twilio.add_message(PHONE, sms().body)
    assert (await http_sms.lookup(sms(), since)).provider_message_id == sid


async def test_lookup_ignores_the_same_text_sent_before_since_beyond_the_skew(
        notifications_ctx, twilio):
    http_sms = provider(notifications_ctx, twilio.settings())
    since = minutes_ago(10)
    # Created 3 minutes before `since` (beyond the 2-minute skew): an earlier message with
    # the same text, not ours.
    twilio.add_message(PHONE, sms().body, created=since - LOOKUP_SKEW - dt.timedelta(minutes=1))
    assert await http_sms.lookup(sms(), since) is None
    # Within the skew (Twilio's clock a minute behind ours): ours.
    sid = twilio.add_message(PHONE, sms().body, created=since - dt.timedelta(minutes=1))
    assert (await http_sms.lookup(sms(), since)).provider_message_id == sid


async def test_lookup_follows_next_page_uri(notifications_ctx, twilio):
    twilio.page_limit = 2
    http_sms = provider(notifications_ctx, twilio.settings())
    since = minutes_ago(5)
    sid = twilio.add_message(PHONE, sms().body, created=minutes_ago(4))
    for n in range(5):  # newer messages to the same phone push ours to the third page
        twilio.add_message(PHONE, f"message {n}", created=minutes_ago(3 - n / 10))
    assert (await http_sms.lookup(sms(), since)).provider_message_id == sid
    assert [r["query"].get("Page", "0") for r in twilio.lookups] == ["0", "1", "2"]
    # Later pages carry the filters in next_page_uri.
    assert all(r["query"]["To"] == PHONE and r["query"]["From"] == "PRPMBI"
               for r in twilio.lookups)


async def test_lookup_stops_at_messages_sent_before_the_bound(notifications_ctx, twilio):
    twilio.page_limit = 2
    http_sms = provider(notifications_ctx, twilio.settings())
    since = minutes_ago(30)
    for n in range(2):
        twilio.add_message(PHONE, f"new {n}", created=minutes_ago(1))
    for n in range(6):  # the same day, before the bound: no need to read further
        twilio.add_message(PHONE, f"old {n}", created=minutes_ago(60 + n))
    assert await http_sms.lookup(sms(), since) is None
    assert len(twilio.lookups) == 2


async def test_lookup_errors_are_retryable_and_never_not_found(notifications_ctx, twilio):
    http_sms = provider(notifications_ctx, twilio.settings())
    twilio.fail_lookups(1, 503)
    with pytest.raises(ProviderError, match="lookup: HTTP 503") as caught:
        await http_sms.lookup(sms(), minutes_ago(1))
    assert caught.value.retryable
    twilio.fail_lookups(1, 429, code=20429)
    with pytest.raises(ProviderError, match="error 20429"):
        await http_sms.lookup(sms(), minutes_ago(1))
    with pytest.raises(ProviderError, match="HTTP 401"):
        await provider(notifications_ctx, twilio.settings(auth_token="wrong")).lookup(
            sms(), minutes_ago(1))
    with pytest.raises(ProviderError, match="not sent"):
        await provider(notifications_ctx, twilio.settings(base_url="http://127.0.0.1:9")
                       ).lookup(sms(), minutes_ago(1))
    twilio.fail_lookups(1, hang=True)
    with pytest.raises(ProviderError, match="no answer"):
        await provider(notifications_ctx, twilio.settings(timeout=0.3)).lookup(
            sms(), minutes_ago(1))
    assert twilio.received == []  # a lookup never sends


async def test_lookup_gives_up_after_its_pages(notifications_ctx, twilio):
    twilio.page_limit = 1
    http_sms = provider(notifications_ctx, twilio.settings())
    for n in range(LOOKUP_MAX_PAGES + 1):
        twilio.add_message(PHONE, f"message {n}")
    with pytest.raises(ProviderError, match=f"{LOOKUP_MAX_PAGES} pages") as caught:
        await http_sms.lookup(sms(), minutes_ago(1))
    assert caught.value.retryable
    assert len(twilio.lookups) == LOOKUP_MAX_PAGES
