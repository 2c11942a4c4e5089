"""When messages may go out: quiet hours in the recipient's zone (wrapping past midnight),
the promotional window (10:00-21:00 India), opt-outs and the daily cap. The clock is the
test's (``clock.move``); nothing sleeps."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import attrs
from hypothesis import given
from hypothesis import strategies as st

from propmubi.actors import Actor
from propmubi_plugins.notifications import api, delivery, policy
from propmubi_plugins.notifications.models import NotifyIn
from tests.plugins.notifications.conftest import (
    ASHA,
    NOON_IST,
    deliveries,
    make_template,
    provider,
)

KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
ZONES = st.sampled_from([KOLKATA, NEW_YORK, zoneinfo.ZoneInfo("Pacific/Honolulu"),
                         zoneinfo.ZoneInfo("Europe/London"), zoneinfo.ZoneInfo("UTC")])
INSTANTS = st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2026, 12, 31),
                        timezones=st.just(dt.UTC))
MINUTES = st.integers(min_value=0, max_value=24 * 60 - 1)
CALLER = Actor.system("marketing")


def quiet(zone: zoneinfo.ZoneInfo, start: str = "22:00", end: str = "08:00") -> policy.Window:
    to_min = lambda t: int(t[:2]) * 60 + int(t[3:])  # noqa: E731
    return policy.Window(to_min(start), to_min(end), zone)


PROMO = policy.Window(600, 1260, KOLKATA)


def test_quiet_hours_wrap_past_midnight_in_the_recipients_zone():
    night = quiet(NEW_YORK)
    # 03:30 UTC is 22:30 in New York (quiet) and 09:00 in India (not quiet there).
    at = dt.datetime(2025, 1, 15, 3, 30, tzinfo=dt.UTC)
    assert night.contains(at) and not quiet(KOLKATA).contains(at)
    assert night.next_at(at, night.end) == dt.datetime(2025, 1, 15, 13, 0, tzinfo=dt.UTC)
    assert not night.contains(dt.datetime(2025, 1, 15, 13, 0, tzinfo=dt.UTC))


@given(INSTANTS, ZONES, MINUTES, MINUTES)
def test_next_allowed_is_allowed_and_nothing_earlier_is(at, zone, start, end):
    q = policy.Window(start, end, zone)
    when = policy.next_allowed(at, q, PROMO)
    if when is None:
        return
    assert when >= at
    assert not q.contains(when) and PROMO.contains(when)
    # No allowed minute was skipped: step back a minute at a time to `at`.
    probe = when - dt.timedelta(minutes=1)
    while probe >= at and when - probe <= dt.timedelta(hours=36):
        assert q.contains(probe) or not PROMO.contains(probe), (at, probe, when)
        probe -= dt.timedelta(minutes=1)


@given(INSTANTS, ZONES)
def test_the_default_windows_always_meet(at, zone):
    when = policy.next_allowed(at, quiet(zone), PROMO)
    assert when is not None and when - at < dt.timedelta(days=2)


@given(INSTANTS, ZONES)
def test_an_instant_outside_every_rule_is_itself(at, zone):
    q = quiet(zone)
    if not q.contains(at) and PROMO.contains(at):
        assert policy.next_allowed(at, q, PROMO) == at


# -- through the service -------------------------------------------------------------------------

def launch(user=ASHA, zone="Asia/Kolkata", **more):
    return NotifyIn(type="new_launch", user_id=user, email="asha@example.com",
                    time_zone=zone, variables={"city": "Pune"}, **more)


async def promo_template(ctx):
    return await make_template(ctx, type="new_launch", channel="email", category="marketing",
                               kind="promotional", subject="New in {#city#}",
                               body="A new project in {#city#}.", variables=["city"])


async def test_a_promotional_message_waits_for_the_window_then_goes(ctx, clock, event_bus):
    await promo_template(ctx)
    clock.move(hours=16)  # 22:00 UTC: 03:30 in India
    await api.notify(ctx, CALLER, launch())
    await event_bus.drain()
    (row,) = await deliveries(ctx)
    opens = dt.datetime(2025, 1, 16, 4, 30, tzinfo=dt.UTC)  # 10:00 in India
    assert (row["status"], row["next_attempt_at"]) == ("deferred", opens)
    assert not provider(ctx, "email").outbox
    clock.move(hours=6, minutes=29)  # 04:29 UTC: a minute early
    assert await delivery.send_due(ctx) == 0
    clock.move(minutes=1)
    assert await delivery.send_due(ctx) == 1
    (mail,) = provider(ctx, "email").outbox
    assert mail.data["list_unsubscribe"].startswith(
        "http://127.0.0.1:8080/api/v1/notifications/unsubscribe/")
    assert "Unsubscribe: http://" in mail.body
    assert (await deliveries(ctx))[0]["status"] == "sent"


async def test_new_york_quiet_hours_hold_a_promotion_india_would_send(ctx, clock, event_bus):
    await promo_template(ctx)
    clock.move(hours=-1)  # 05:00 UTC: 10:30 in India, 00:00 in New York
    await api.notify(ctx, CALLER, launch(zone="America/New_York"))
    await api.notify(ctx, CALLER, launch(zone="Asia/Kolkata"))
    await event_bus.drain()
    ny, india = await deliveries(ctx)
    assert india["status"] == "sent"
    # New York's quiet hours end at 08:00 (13:00 UTC), inside India's 10:00-21:00.
    assert (ny["status"], ny["next_attempt_at"]) == (
        "deferred", dt.datetime(2025, 1, 15, 13, 0, tzinfo=dt.UTC))


async def test_transactional_messages_ignore_windows_and_opt_outs(ctx, clock, event_bus):
    await make_template(ctx)
    clock.move(hours=16)  # 03:30 in India
    await api.notify(ctx, CALLER, NotifyIn(type="lead_assigned", user_id=ASHA,
                                           phone="+919812345678",
                                           variables={"name": "V", "project": "P"}))
    await event_bus.drain()
    assert [r["status"] for r in await deliveries(ctx)] == ["sent"]


async def test_an_opted_out_category_is_skipped(ctx, event_bus):
    await promo_template(ctx)
    await ctx.db.execute("INSERT INTO notifications_preferences VALUES"
                         " (%s, 'marketing', 'email', 'preferences', now())", (ASHA,))
    await api.notify(ctx, CALLER, launch())
    await event_bus.drain()
    (row,) = await deliveries(ctx)
    assert (row["status"], row["reason"]) == ("skipped", "opted out of marketing on email")


def lead(n):
    return NotifyIn(type="lead_assigned", user_id=ASHA, phone="+919812345678",
                    variables={"name": f"V{n}", "project": "P"})


async def test_the_daily_cap_holds_back_promotional_messages_only(ctx, clock, event_bus):
    ctx.settings = attrs.evolve(ctx.settings, daily_cap=2)
    await make_template(ctx)
    await promo_template(ctx)
    # An advisor's busy day: every new lead goes out at once, past the cap too.
    for n in range(3):
        await api.notify(ctx, CALLER, lead(n))
    await api.notify(ctx, CALLER, launch())
    await event_bus.drain()
    rows = await deliveries(ctx)
    assert [r["status"] for r in rows] == ["sent", "sent", "sent", "skipped"]
    assert rows[3]["reason"] == "daily cap of 2 reached"
    assert len(provider(ctx, "sms").outbox) == 3 and not provider(ctx, "email").outbox
    # Transactional messages count against the day's cap (that is what held the promotion
    # back), on every channel together; critical ones neither count nor are capped.
    assert {r["counted_on"] for r in rows[:3]} == {dt.date(2025, 1, 15)}
    await api.send_now(ctx, CALLER, "sms", "+919812345678", "code 1", user_id=ASHA)
    assert len(provider(ctx, "sms").outbox) == 4
    assert (await deliveries(ctx))[4]["counted_on"] is None
    # The recipient's next day starts a new count.
    clock.at = NOON_IST + dt.timedelta(days=1)
    await api.notify(ctx, CALLER, launch())
    await event_bus.drain()
    assert (await deliveries(ctx))[5]["status"] == "sent"


async def test_promotional_messages_count_and_are_skipped_at_the_cap(ctx, event_bus):
    ctx.settings = attrs.evolve(ctx.settings, daily_cap=2)
    await make_template(ctx)
    await promo_template(ctx)
    await api.notify(ctx, CALLER, launch())
    await api.notify(ctx, CALLER, lead(1))
    await api.notify(ctx, CALLER, launch())
    await api.notify(ctx, CALLER, lead(2))
    await event_bus.drain()
    assert [r["status"] for r in await deliveries(ctx)] == ["sent", "sent", "skipped", "sent"]
