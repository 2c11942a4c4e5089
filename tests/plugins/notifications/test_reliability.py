"""At most one delivered message per (notification, channel): retries with backoff, provider
fallback, "maybe sent" pinning, concurrent workers, a worker killed mid-send, and how an
ambiguous attempt is settled (the provider's lookup, its de-duplication, or ``unknown``).
The providers are real objects offered by a test plugin (conftest's ScriptedProvider, here
with the settling members a provider may declare: ``dedupes`` and ``lookup``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import attrs
import pytest

import propmubi_plugins.auth
import propmubi_plugins.notifications
from propmubi import hookimpl
from propmubi.actors import Actor
from propmubi.testing import StandInAuth
from propmubi_plugins.notifications import api, delivery
from propmubi_plugins.notifications.models import NotifyIn
from propmubi_plugins.notifications.providers.base import Message, ProviderError, Receipt
from propmubi_plugins.notifications.service import MessageNotSent
from tests.plugins.notifications.conftest import (
    ASHA,
    ScriptedProvider,
    TestProviders,
    attempts,
    deliveries,
    make_template,
    provider,
    published,
)

CALLER = Actor.system("leads")
SETTINGS: dict[str, Any] = {
    "sms_providers": ["first_sms", "second_sms"], "push_providers": ["first_push"],
    "email_providers": ["first_email"], "backoff_base": 30, "backoff_cap": 3600}


class SettlingProvider(ScriptedProvider):
    """A scripted provider that also knows the step ``lost`` (it accepts the message and the
    answer is lost: ``maybe_sent``) and says whether it ``dedupes``."""

    def __init__(self, name: str, channel: Any, *, dedupes: bool) -> None:
        super().__init__(name, channel)
        self.dedupes = dedupes
        #: The receipt id of each message key it accepted.
        self.ids: dict[str, str] = {}

    async def send(self, message: Message) -> Receipt:
        if self.script and self.script[0] == "lost":
            self.script.pop(0)
            self.calls.append(message)
            self.entered.set()
            self.accepted.append(message)
            self.ids[message.key] = f"{self.name}-{len(self.calls)}"
            raise ProviderError("the connection dropped after the request was sent",
                                retryable=True, maybe_sent=True)
        receipt = await super().send(message)
        self.ids[message.key] = receipt.provider_message_id
        return receipt


class LookupProvider(SettlingProvider):
    """A provider that can be asked whether it accepted a message: it answers from what it
    accepted, unless ``lookup_script`` says ``error`` or ``hang`` first."""

    def __init__(self, name: str, channel: Any) -> None:
        super().__init__(name, channel, dedupes=False)
        self.lookup_script: list[str] = []
        #: Each lookup's (message, since).
        self.lookups: list[tuple[Message, dt.datetime]] = []

    async def lookup(self, message: Message, since: dt.datetime) -> Receipt | None:
        self.lookups.append((message, since))
        step = self.lookup_script.pop(0) if self.lookup_script else "answer"
        if step == "error":
            raise ProviderError("lookup: HTTP 503", retryable=True)
        if step == "hang":
            await asyncio.sleep(3600)
        found = self.ids.get(message.key)
        return Receipt(provider=self.name, provider_message_id=found) if found else None


class SettlingProviders(TestProviders):
    """The test plugin's providers with their settling members: the ``first_*`` ones and
    ``second_sms`` de-duplicate (a resend is merged), ``lookup_sms`` can be asked,
    ``plain_sms`` and ``plain_email`` can do neither."""

    __test__ = False

    @hookimpl
    def propmubi_notification_providers(self) -> dict[str, Any]:
        made: dict[str, Any] = {
            name: (lambda ctx, name=name, channel=channel:
                   SettlingProvider(name, channel, dedupes=True))
            for name, channel in (("first_sms", "sms"), ("second_sms", "sms"),
                                  ("first_push", "push"), ("first_email", "email"))}
        made["lookup_sms"] = lambda ctx: LookupProvider("lookup_sms", "sms")
        made["plain_sms"] = lambda ctx: SettlingProvider("plain_sms", "sms", dedupes=False)
        made["plain_email"] = lambda ctx: SettlingProvider("plain_email", "email",
                                                           dedupes=False)
        return made


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [propmubi_plugins.auth, propmubi_plugins.notifications, StandInAuth(),
            SettlingProviders()]


@pytest.fixture
def notifications_settings() -> dict[str, Any]:
    return dict(SETTINGS)


def lead(**more: Any) -> NotifyIn:
    values: dict[str, Any] = {"type": "lead_assigned", "user_id": ASHA,
                              "phone": "+919812345678",
                              "variables": {"name": "Vikram", "project": "Palm Grove"}}
    values.update(more)
    return NotifyIn(**values)


async def requested(ctx: Any, event_bus: Any, **more: Any) -> Any:
    await make_template(ctx)
    out = await api.notify(ctx, CALLER, lead(**more))
    await event_bus.drain()
    return out


def ledger(rows: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    return [(a["attempt_no"], a["provider"], a["status"]) for a in rows]


async def test_a_retryable_failure_falls_back_to_the_next_provider_at_once(ctx, event_bus):
    first, second = provider(ctx, "sms", 0), provider(ctx, "sms", 1)
    first.script = ["retryable"]
    await requested(ctx, event_bus)
    assert ledger(await attempts(ctx)) == [(1, "first_sms", "retryable"),
                                           (2, "second_sms", "sent")]
    (row,) = await deliveries(ctx)
    assert (row["status"], row["provider"], row["attempts"]) == ("sent", "second_sms", 2)
    assert [m.key for m in first.calls] == [m.key for m in second.accepted]
    (done,) = await published(ctx, "notifications.message_delivered")
    assert (done["provider"], done["attempts"]) == ("second_sms", 2)


async def test_a_failed_round_waits_with_exponential_backoff(ctx, clock, event_bus):
    first, second = provider(ctx, "sms", 0), provider(ctx, "sms", 1)
    first.script = ["retryable", "retryable", "ok"]
    second.script = ["retryable", "retryable"]
    await requested(ctx, event_bus)
    (row,) = await deliveries(ctx)
    assert (row["status"], row["provider"]) == ("pending", "first_sms")
    assert row["next_attempt_at"] == clock.now() + dt.timedelta(seconds=30)
    assert await delivery.send_due(ctx) == 0  # not yet
    clock.move(seconds=30)
    assert await delivery.send_due(ctx) == 1
    (row,) = await deliveries(ctx)
    assert row["next_attempt_at"] == clock.now() + dt.timedelta(seconds=60)  # doubled
    clock.move(seconds=60)
    await delivery.send_due(ctx)
    assert ledger(await attempts(ctx)) == [
        (1, "first_sms", "retryable"), (2, "second_sms", "retryable"),
        (3, "first_sms", "retryable"), (4, "second_sms", "retryable"),
        (5, "first_sms", "sent")]
    assert (await deliveries(ctx))[0]["status"] == "sent"
    assert len(first.accepted) + len(second.accepted) == 1


async def test_giving_up_after_max_attempts_fails_and_says_why(ctx, clock, event_bus):
    ctx.settings = attrs.evolve(ctx.settings, max_attempts=3)
    provider(ctx, "sms", 0).script = ["retryable"] * 5
    provider(ctx, "sms", 1).script = ["retryable"] * 5
    await requested(ctx, event_bus)
    clock.move(seconds=30)
    await delivery.send_due(ctx)
    (row,) = await deliveries(ctx)
    assert row["status"] == "failed" and "gave up after 3 attempts" in row["reason"]
    (failed,) = await published(ctx, "notifications.message_failed")
    assert failed["status"] == "failed" and failed["attempts"] == 3


async def test_a_refusal_fails_at_once_without_fallback(ctx, event_bus):
    provider(ctx, "sms", 0).script = ["refuse"]
    await requested(ctx, event_bus)
    (row,) = await deliveries(ctx)
    assert row["status"] == "failed" and "unknown number" in row["reason"]
    assert not provider(ctx, "sms", 1).calls
    (failed,) = await published(ctx, "notifications.message_failed")
    assert "400: unknown number" in failed["error"]


async def test_a_refused_push_token_gives_way_to_the_next(ctx, event_bus):
    await make_template(ctx, channel="push", body="{#name#} likes {#project#}.")
    push = provider(ctx, "push")
    push.script = ["refuse"]
    await api.notify(ctx, CALLER, lead(phone=None, push_tokens=["old", "new"]))
    await event_bus.drain()
    assert [m.to for m in push.calls] == ["old", "new"]
    assert [m.to for m in push.accepted] == ["new"]


async def test_maybe_sent_through_a_deduping_provider_is_resent_only_through_it(
        ctx, clock, event_bus):
    first, second = provider(ctx, "sms", 0), provider(ctx, "sms", 1)
    first.script = ["maybe"]
    await requested(ctx, event_bus)
    (row,) = await deliveries(ctx)
    assert (row["status"], row["pinned"], row["provider"]) == ("pending", True, "first_sms")
    clock.move(seconds=30)
    await delivery.send_due(ctx)
    assert not second.calls
    assert len(first.calls) == 2 and first.calls[0].key == first.calls[1].key
    assert ledger(await attempts(ctx)) == [(1, "first_sms", "maybe_sent"),
                                           (2, "first_sms", "sent")]


async def test_maybe_sent_until_the_attempts_run_out_is_unknown(ctx, clock, event_bus):
    ctx.settings = attrs.evolve(ctx.settings, max_attempts=2)
    provider(ctx, "sms", 0).script = ["maybe", "maybe"]
    await requested(ctx, event_bus)
    clock.move(seconds=30)
    await delivery.send_due(ctx)
    (row,) = await deliveries(ctx)
    assert row["status"] == "unknown" and "may have been sent by first_sms" in row["reason"]
    assert not provider(ctx, "sms", 1).calls
    (failed,) = await published(ctx, "notifications.message_failed")
    assert failed["status"] == "unknown"


async def test_a_provider_that_does_not_answer_counts_as_maybe_sent(ctx, event_bus):
    ctx.settings = attrs.evolve(ctx.settings, send_timeout=1, lease_seconds=10)
    provider(ctx, "sms", 0).script = ["hang"]
    await requested(ctx, event_bus)
    (row,) = await deliveries(ctx)
    assert row["pinned"] and row["status"] == "pending"
    assert ledger(await attempts(ctx)) == [(1, "first_sms", "maybe_sent")]
    assert "no answer within 1 s" in (await attempts(ctx))[0]["error"]


async def test_two_workers_on_one_delivery_send_it_once(ctx, services):
    await make_template(ctx)
    out = await api.notify(ctx, CALLER, lead())
    (one,) = out.deliveries
    first = provider(ctx, "sms", 0)
    first.gate = asyncio.Event()
    worker = asyncio.create_task(delivery.deliver(ctx, one.id))
    await first.entered.wait()  # the first worker is inside the provider's send
    others = [delivery.deliver(ctx, one.id) for _ in range(3)]
    await asyncio.gather(*others, delivery.send_due(ctx))  # they find it claimed
    first.gate.set()
    await worker
    assert len(first.calls) == 1 and len(first.accepted) == 1
    assert not provider(ctx, "sms", 1).calls
    assert ledger(await attempts(ctx)) == [(1, "first_sms", "sent")]


async def test_racing_claims_let_exactly_one_through(ctx):
    await make_template(ctx)
    out = await api.notify(ctx, CALLER, lead())
    claims = await asyncio.gather(*(delivery.claim(ctx, out.deliveries[0].id)
                                    for _ in range(6)))
    assert len([c for c in claims if c is not None]) == 1


async def kill_mid_send(ctx: Any) -> tuple[Any, Any]:
    """A worker claims the delivery, hands the message to the provider and dies before it
    records anything: the rows stay as it left them."""
    await make_template(ctx)
    out = await api.notify(ctx, CALLER, lead())
    held = await delivery.claim(ctx, out.deliveries[0].id)
    assert held is not None
    await held.provider.send(held.message)  # accepted; then the process is killed
    return out, held


async def test_an_interrupted_send_through_a_deduping_provider_is_resent_once_with_its_key(
        ctx, clock):
    _, held = await kill_mid_send(ctx)
    first = provider(ctx, "sms", 0)
    assert await delivery.send_due(ctx) == 0  # the lease still runs
    clock.move(seconds=ctx.settings.lease_seconds + 1)
    assert await delivery.send_due(ctx) == 1
    assert [m.key for m in first.calls] == [held.message.key] * 2  # the same key: deduped
    assert not provider(ctx, "sms", 1).calls
    assert ledger(await attempts(ctx)) == [(1, "first_sms", "interrupted"),
                                           (2, "first_sms", "sent")]
    (row,) = await deliveries(ctx)
    assert (row["status"], row["pinned"]) == ("sent", True)
    clock.move(seconds=ctx.settings.lease_seconds + 1)
    assert await delivery.send_due(ctx) == 0
    assert len(first.calls) == 2


async def test_without_resending_an_interrupted_send_is_unknown(ctx, clock):
    ctx.settings = attrs.evolve(ctx.settings, resend_interrupted=False)
    await kill_mid_send(ctx)
    clock.move(seconds=ctx.settings.lease_seconds + 1)
    await delivery.send_due(ctx)
    (row,) = await deliveries(ctx)
    assert row["status"] == "unknown" and "interrupted mid-send" in row["reason"]
    assert "resend_interrupted is off" in row["reason"]
    assert len(provider(ctx, "sms", 0).calls) == 1
    (failed,) = await published(ctx, "notifications.message_failed")
    assert failed["status"] == "unknown"


async def test_an_interrupted_direct_send_is_never_resent(ctx, clock, services):
    first = provider(ctx, "sms", 0)
    first.gate = asyncio.Event()
    sending = asyncio.create_task(api.send_now(ctx, CALLER, "sms", "+919812345678", "1234"))
    await first.entered.wait()  # the first worker is inside the provider's send
    sending.cancel()  # the process dies mid-send
    with pytest.raises(asyncio.CancelledError):
        await sending
    clock.move(seconds=ctx.settings.lease_seconds + 1)
    await delivery.send_due(ctx)
    (row,) = await deliveries(ctx)
    assert row["status"] == "unknown" and len(first.calls) == 1


async def test_send_now_falls_back_and_says_when_nothing_was_sent(ctx):
    first, second = provider(ctx, "sms", 0), provider(ctx, "sms", 1)
    first.script = ["retryable", "retryable", "maybe"]
    second.script = ["ok", "refuse"]
    done = await api.send_now(ctx, CALLER, "sms", "+919812345678", "code 1")
    assert (done.provider, done.attempts) == ("second_sms", 2)
    with pytest.raises(MessageNotSent) as refused:
        await api.send_now(ctx, CALLER, "sms", "+919812345678", "code 2")
    assert not refused.value.maybe_sent and refused.value.status == 503
    with pytest.raises(MessageNotSent) as maybe:
        await api.send_now(ctx, CALLER, "sms", "+919812345678", "code 3")
    assert maybe.value.maybe_sent
    assert len(second.calls) == 2  # never after the "maybe"
    statuses = [r["status"] for r in await deliveries(ctx)]
    assert statuses == ["sent", "failed", "unknown"]


# -- settling an ambiguous attempt ----------------------------------------------------------

class TestAProviderThatCanBeAsked:
    """``lookup_sms`` (like ``http_sms``): an ambiguous attempt is settled by asking it."""

    @pytest.fixture
    def notifications_settings(self) -> dict[str, Any]:
        return {**SETTINGS, "sms_providers": ["lookup_sms", "second_sms"]}

    async def test_found_is_sent_with_its_id_and_not_resent(self, ctx, clock, event_bus):
        asked = provider(ctx, "sms", 0)
        asked.script = ["lost"]  # accepted, the answer lost
        await requested(ctx, event_bus)
        (row,) = await deliveries(ctx)
        assert (row["status"], row["pinned"], row["provider"]) == ("pending", True,
                                                                   "lookup_sms")
        assert "asked whether it accepted it only through lookup_sms" in row["reason"]
        clock.move(seconds=30)
        await delivery.send_due(ctx)
        assert len(asked.calls) == 1  # never resent
        assert not provider(ctx, "sms", 1).calls
        first, found = await attempts(ctx)
        assert ledger([first, found]) == [(1, "lookup_sms", "maybe_sent"),
                                          (2, "lookup_sms", "found")]
        assert found["provider_message_id"] == "lookup_sms-1"
        # It looked back to the start of the ambiguous attempt.
        ((message, since),) = asked.lookups
        assert since == first["started_at"] and message.key == asked.calls[0].key
        (row,) = await deliveries(ctx)
        assert (row["status"], row["provider_message_id"]) == ("sent", "lookup_sms-1")
        assert "found by asking it" in row["reason"]
        (done,) = await published(ctx, "notifications.message_delivered")
        assert (done["provider"], done["attempts"]) == ("lookup_sms", 2)

    async def test_not_found_is_sent_through_it_with_the_same_key(self, ctx, clock,
                                                                   event_bus):
        asked = provider(ctx, "sms", 0)
        asked.script = ["maybe"]  # the answer lost, nothing accepted
        await requested(ctx, event_bus)
        clock.move(seconds=30)
        await delivery.send_due(ctx)
        assert len(asked.lookups) == 1
        assert len(asked.calls) == 2 and asked.calls[0].key == asked.calls[1].key
        assert len(asked.accepted) == 1
        assert not provider(ctx, "sms", 1).calls
        assert ledger(await attempts(ctx)) == [(1, "lookup_sms", "maybe_sent"),
                                               (2, "lookup_sms", "sent")]
        assert (await deliveries(ctx))[0]["status"] == "sent"

    async def test_a_failed_lookup_is_asked_again_later(self, ctx, clock, event_bus):
        asked = provider(ctx, "sms", 0)
        asked.script = ["lost"]
        asked.lookup_script = ["error"]
        await requested(ctx, event_bus)
        clock.move(seconds=30)
        await delivery.send_due(ctx)
        (row,) = await deliveries(ctx)
        assert (row["status"], row["pinned"]) == ("pending", True)
        assert row["next_attempt_at"] == clock.now() + dt.timedelta(seconds=60)
        assert "could not ask lookup_sms whether it accepted it" in row["reason"]
        clock.move(seconds=60)
        await delivery.send_due(ctx)
        assert ledger(await attempts(ctx)) == [(1, "lookup_sms", "maybe_sent"),
                                               (2, "lookup_sms", "lookup_failed"),
                                               (3, "lookup_sms", "found")]
        assert len(asked.calls) == 1 and len(asked.lookups) == 2
        # Both lookups looked back to the first ambiguous attempt.
        assert asked.lookups[0][1] == asked.lookups[1][1]
        assert (await deliveries(ctx))[0]["status"] == "sent"

    async def test_lookups_failing_until_the_attempts_run_out_is_unknown(self, ctx, clock,
                                                                         event_bus):
        ctx.settings = attrs.evolve(ctx.settings, max_attempts=3)
        asked = provider(ctx, "sms", 0)
        asked.script = ["lost"]
        asked.lookup_script = ["error", "error"]
        await requested(ctx, event_bus)
        clock.move(seconds=30)
        await delivery.send_due(ctx)
        clock.move(seconds=60)
        await delivery.send_due(ctx)
        (row,) = await deliveries(ctx)
        assert row["status"] == "unknown" and "gave up after 3 attempts" in row["reason"]
        assert len(asked.calls) == 1 and not provider(ctx, "sms", 1).calls
        (failed,) = await published(ctx, "notifications.message_failed")
        assert failed["status"] == "unknown"

    async def test_a_lookup_without_an_answer_counts_as_failed(self, ctx, clock, event_bus):
        ctx.settings = attrs.evolve(ctx.settings, send_timeout=1, lease_seconds=10)
        asked = provider(ctx, "sms", 0)
        asked.script = ["maybe"]
        asked.lookup_script = ["hang"]
        await requested(ctx, event_bus)
        clock.move(seconds=30)
        await delivery.send_due(ctx)
        assert len(asked.calls) == 1
        (_, failed) = await attempts(ctx)
        assert failed["status"] == "lookup_failed" and "no answer within 1 s" in failed["error"]

    async def test_an_interrupted_send_it_accepted_is_found_not_resent(self, ctx, clock):
        asked = provider(ctx, "sms", 0)
        await kill_mid_send(ctx)  # accepted, then the worker died
        clock.move(seconds=ctx.settings.lease_seconds + 1)
        assert await delivery.send_due(ctx) == 1
        assert len(asked.calls) == 1
        first, found = await attempts(ctx)
        assert ledger([first, found]) == [(1, "lookup_sms", "interrupted"),
                                          (2, "lookup_sms", "found")]
        assert asked.lookups[0][1] == first["started_at"]
        (row,) = await deliveries(ctx)
        assert (row["status"], row["provider_message_id"]) == ("sent", "lookup_sms-1")

    async def test_an_interrupted_send_it_never_got_is_sent_once(self, ctx, clock):
        asked = provider(ctx, "sms", 0)
        await make_template(ctx)
        out = await api.notify(ctx, CALLER, lead())
        assert await delivery.claim(ctx, out.deliveries[0].id) is not None
        # The worker died before its request reached the provider.
        clock.move(seconds=ctx.settings.lease_seconds + 1)
        assert await delivery.send_due(ctx) == 1
        assert len(asked.lookups) == 1 and len(asked.accepted) == 1
        assert ledger(await attempts(ctx)) == [(1, "lookup_sms", "interrupted"),
                                               (2, "lookup_sms", "sent")]


class TestAProviderThatCanNeitherBeAskedNorDedupe:
    """``plain_sms``/``plain_email`` (like ``smtp``): an ambiguous message is never resent."""

    @pytest.fixture
    def notifications_settings(self) -> dict[str, Any]:
        return {**SETTINGS, "sms_providers": ["plain_sms", "second_sms"],
                "email_providers": ["plain_email"]}

    async def test_maybe_sent_is_unknown_at_once(self, ctx, clock, event_bus):
        plain = provider(ctx, "sms", 0)
        plain.script = ["lost"]
        await requested(ctx, event_bus)
        (row,) = await deliveries(ctx)
        assert row["status"] == "unknown"
        assert "can neither be asked whether it did nor merge a resend" in row["reason"]
        clock.move(seconds=3600)
        await delivery.send_due(ctx)
        assert len(plain.calls) == 1 and not provider(ctx, "sms", 1).calls
        assert ledger(await attempts(ctx)) == [(1, "plain_sms", "maybe_sent")]
        (failed,) = await published(ctx, "notifications.message_failed")
        assert failed["status"] == "unknown"

    async def test_an_interrupted_email_is_unknown_and_never_resent(self, ctx, clock):
        await make_template(ctx, channel="email")
        out = await api.notify(ctx, CALLER, lead(phone=None, email="asha@example.com"))
        held = await delivery.claim(ctx, out.deliveries[0].id)
        assert held is not None
        await held.provider.send(held.message)  # accepted by the relay; the worker dies
        clock.move(seconds=ctx.settings.lease_seconds + 1)
        await delivery.send_due(ctx)
        (row,) = await deliveries(ctx)
        assert row["status"] == "unknown"
        assert row["reason"].startswith("interrupted mid-send through plain_email")
        assert "not resent, so that the recipient never gets it twice" in row["reason"]
        assert len(provider(ctx, "email", 0).calls) == 1
        assert ledger(await attempts(ctx)) == [(1, "plain_email", "interrupted")]
