"""The ``smtp`` provider against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import logging

import pytest

from propmubi.config import ConfigError
from propmubi_plugins.notifications.providers import FACTORIES
from propmubi_plugins.notifications.providers.base import Message, ProviderError
from propmubi_plugins.notifications.providers.settings import SmtpSettings
from propmubi_plugins.notifications.providers.smtp import message_id
from tests.plugins.notifications.providers.simulators import SmtpSimulator, silent_server

KEY = "0190d1e2-7c3a-7b1e-9f00-000000000001.email"


def mail(**changes: object) -> Message:
    values: dict[str, object] = {"key": KEY, "channel": "email", "to": "asha@example.com",
                                 "subject": "Your visit on Friday",
                                 "body": "Namaste Asha, your visit is confirmed. ₹ 0 due."}
    return Message(**{**values, **changes})  # type: ignore[arg-type]


def provider(notifications_ctx, settings: SmtpSettings):
    return FACTORIES["smtp"](notifications_ctx(smtp=settings))


async def test_sends_a_proper_mime_message(notifications_ctx, smtp_server):
    smtp = provider(notifications_ctx, smtp_server.settings())
    assert (smtp.name, smtp.channel) == ("smtp", "email")
    receipt = await smtp.send(mail())
    assert receipt.provider == "smtp"
    assert receipt.provider_message_id == f"<{KEY}@propmubi>"
    [got] = smtp_server.received
    assert got.mail_from == "noreply@propmubi.test"
    assert got.rcpt_tos == ["asha@example.com"]
    message = got.message
    assert message["Message-ID"] == f"<{KEY}@propmubi>"
    assert message["From"] == "Propmubi <noreply@propmubi.test>"
    assert message["To"] == "asha@example.com"
    assert message["Subject"] == "Your visit on Friday"
    assert message["Date"] is not None and message["Date"].datetime.tzinfo is not None
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().rstrip() == "Namaste Asha, your visit is confirmed. ₹ 0 due."
    assert "List-Unsubscribe" not in message


async def test_one_click_unsubscribe_headers(notifications_ctx, smtp_server):
    smtp = provider(notifications_ctx, smtp_server.settings())
    url = "https://propmubi.example/api/v1/notifications/unsubscribe?t=abc"
    await smtp.send(mail(data={"list_unsubscribe": url}))
    message = smtp_server.received[0].message
    assert message["List-Unsubscribe"].strip() == f"<{url}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_message_id_keeps_distinct_keys_distinct():
    assert message_id("abc.1") == "<abc.1@propmubi>"
    assert message_id("a:b") != message_id("a-b")
    assert message_id("a:b") == "<a=3Ab@propmubi>"
    assert message_id("a b") == "<a=20b@propmubi>"


async def test_the_same_key_gives_the_same_message_id(notifications_ctx, smtp_server):
    smtp = provider(notifications_ctx, smtp_server.settings())
    await smtp.send(mail())
    await smtp.send(mail())
    ids = {m.message["Message-ID"] for m in smtp_server.received}
    assert ids == {f"<{KEY}@propmubi>"}


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_and_auth(notifications_ctx, certificate, security):
    async with SmtpSimulator.running(security=security, users={"relay": "pa55word"},
                                     cert=certificate) as server:
        smtp = provider(notifications_ctx, server.settings())
        await smtp.send(mail())
        [got] = server.received
        assert got.tls and got.login == "relay"


async def test_starttls_is_required_when_configured(notifications_ctx, smtp_server):
    # The server offers no STARTTLS: the provider refuses to send in the clear.
    smtp = provider(notifications_ctx, smtp_server.settings(security="starttls"))
    with pytest.raises(ProviderError) as caught:
        await smtp.send(mail())
    assert caught.value.retryable and not caught.value.maybe_sent
    assert smtp_server.received == []


async def test_a_wrong_password_is_retryable(notifications_ctx, certificate):
    async with SmtpSimulator.running(security="starttls", users={"relay": "pa55word"},
                                     cert=certificate) as server:
        smtp = provider(notifications_ctx, server.settings(password="wrong"))
        with pytest.raises(ProviderError, match="authentication") as caught:
            await smtp.send(mail())
    assert caught.value.retryable and not caught.value.maybe_sent


async def test_a_4xx_is_retryable(notifications_ctx, smtp_server):
    smtp_server.data_replies = ["451 4.3.0 Mail server temporarily rejected message"]
    smtp = provider(notifications_ctx, smtp_server.settings())
    with pytest.raises(ProviderError, match="451") as caught:
        await smtp.send(mail())
    assert caught.value.retryable and not caught.value.maybe_sent


async def test_a_greylisted_recipient_is_retryable(notifications_ctx, smtp_server):
    smtp_server.rcpt_replies = ["450 4.2.0 Greylisted, try again later"]
    with pytest.raises(ProviderError, match="450") as caught:
        await provider(notifications_ctx, smtp_server.settings()).send(mail())
    assert caught.value.retryable and not caught.value.maybe_sent


async def test_a_bad_recipient_is_final(notifications_ctx, smtp_server):
    smtp_server.rcpt_replies = ["550 5.1.1 No such user here"]
    with pytest.raises(ProviderError, match="550") as caught:
        await provider(notifications_ctx, smtp_server.settings()).send(mail())
    assert not caught.value.retryable and not caught.value.maybe_sent
    assert smtp_server.data_seen == 0


async def test_refused_content_is_final(notifications_ctx, smtp_server):
    smtp_server.data_replies = ["554 5.7.1 Message rejected"]
    with pytest.raises(ProviderError, match="554") as caught:
        await provider(notifications_ctx, smtp_server.settings()).send(mail())
    assert not caught.value.retryable


async def test_connection_refused_is_retryable(notifications_ctx, smtp_server):
    settings = smtp_server.settings(port=9)  # discard: nothing listens on loopback
    with pytest.raises(ProviderError) as caught:
        await provider(notifications_ctx, settings).send(mail())
    assert caught.value.retryable and not caught.value.maybe_sent


async def test_a_silent_server_is_a_retryable_connect_timeout(notifications_ctx, smtp_server):
    async with silent_server() as port:
        settings = smtp_server.settings(port=port, timeout=0.3)
        with pytest.raises(ProviderError, match="connect") as caught:
            await provider(notifications_ctx, settings).send(mail())
    assert caught.value.retryable and not caught.value.maybe_sent


async def test_a_timeout_after_data_may_have_sent(notifications_ctx, smtp_server):
    smtp_server.hang_data = True
    settings = smtp_server.settings(timeout=0.3)
    with pytest.raises(ProviderError, match="data") as caught:
        await provider(notifications_ctx, settings).send(mail())
    assert caught.value.maybe_sent and caught.value.retryable
    assert smtp_server.data_seen == 1


@pytest.mark.parametrize(("changes", "key"), [
    ({}, "host"),
    ({"host": "smtp.example"}, "sender"),
    ({"host": "smtp.example", "sender": "a@b.example", "username": "u"}, "password"),
    ({"host": "smtp.example", "sender": "a@b.example", "ca_file": "/nonexistent.pem"},
     "ca_file"),
])
async def test_missing_settings_are_named(notifications_ctx, changes, key):
    with pytest.raises(ConfigError, match=rf"plugins\.notifications\.smtp\.{key}"):
        FACTORIES["smtp"](notifications_ctx(smtp=SmtpSettings(**changes)))


async def test_nothing_secret_is_logged(notifications_ctx, certificate, caplog):
    caplog.set_level(logging.DEBUG)
    async with SmtpSimulator.running(security="starttls", users={"relay": "pa55word"},
                                     cert=certificate) as server:
        smtp = provider(notifications_ctx, server.settings())
        await smtp.send(mail(body="123456 is your code"))
        server.data_replies = ["451 4.3.0 later"]
        with pytest.raises(ProviderError):
            await smtp.send(mail(body="654321 is your code"))
        bad = provider(notifications_ctx, server.settings(password="wr0ng-secret"))
        with pytest.raises(ProviderError):
            await bad.send(mail(body="111222 is your code"))
    # Everything our side logged (mail.log is the simulator's server, which logs what it got).
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args}" for r in caplog.records
                     if not r.name.startswith("mail."))
    assert "smtp" in text  # something was logged
    for secret in ("pa55word", "wr0ng-secret", "123456", "654321", "111222"):
        assert secret not in text


async def test_a_refused_sender_is_the_relays_refusal_not_the_messages(notifications_ctx,
                                                                       smtp_server):
    smtp_server.mail_replies = ["553 5.7.1 Sender address rejected: not owned by user"]
    with pytest.raises(ProviderError, match="553") as caught:
        await provider(notifications_ctx, smtp_server.settings()).send(mail())
    assert caught.value.retryable and not caught.value.maybe_sent


async def test_a_non_ascii_address_is_final(notifications_ctx, smtp_server):
    with pytest.raises(ProviderError) as caught:
        await provider(notifications_ctx, smtp_server.settings()).send(mail(to="आशा@example.com"))
    assert not caught.value.retryable and smtp_server.received == []
