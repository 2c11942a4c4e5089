"""Properties of the CRM's pure parts (no services): phone normalisation, the business
calendar, routing's fairness, the SLA clock's pauses."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
import zoneinfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from propmubi_plugins.crm import phones, pipeline, routing
from propmubi_plugins.crm.calendar import BusinessCalendar
from propmubi_plugins.crm.settings import CrmSettings

IST = zoneinfo.ZoneInfo("Asia/Kolkata")
CAL = BusinessCalendar.from_settings(CrmSettings(holidays=("2025-08-15",)))
FLOW = pipeline.Pipeline.from_settings(CrmSettings())
H = dt.timedelta(hours=1)

# --------------------------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------------------------

mobiles = st.from_regex(r"[6-9][0-9]{9}", fullmatch=True)


def _spellings(number: str) -> list[str]:
    a, b = number[:5], number[5:]
    return [number, f"{a} {b}", f"+91{number}", f"+91-{a}-{b}", f"0{number}", f"91{number}",
            f"+91 {a} {b}", f"0091 {a} {b}", f"(+91) {a}-{b}", f" {a}  {b} "]


@given(mobiles)
def test_every_spelling_of_an_indian_mobile_is_one_person(number):
    forms = {phones.normalise(s, "IN") for s in _spellings(number)}
    assert forms == {f"+91{number}"}


@given(st.text(max_size=60))
def test_normalising_never_crashes_and_gives_e164_or_none(text):
    out = phones.normalise(text, "IN")
    assert out is None or (out.startswith("+") and out[1:].isdigit())
    if out is not None:
        assert phones.normalise(out, "IN") == out  # idempotent


@pytest.mark.parametrize("text", ["", "   ", "abc", "12345", "+91 00000 00000", "9" * 41])
def test_blank_or_not_a_phone_is_none(text):
    assert phones.normalise(text, "IN") is None


# --------------------------------------------------------------------------------------------
# The business calendar
# --------------------------------------------------------------------------------------------

instants = st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2026, 12, 31),
                        timezones=st.just(dt.UTC))
durations = st.integers(min_value=0, max_value=60 * 24 * 20).map(lambda m: dt.timedelta(
    minutes=m))


def ist(y, m, d, h, mi=0):
    return dt.datetime(y, m, d, h, mi, tzinfo=IST)


def test_business_hours_weekends_and_holidays_by_example():
    # Saturday 16 Aug 2025 18:00 IST + 2 h: Saturday closes at 19:00, Sunday is off.
    assert CAL.add_business_time(ist(2025, 8, 16, 18), 2 * H) == ist(2025, 8, 18, 11)
    # Thursday 14 Aug 18:30 + 1 h: Friday 15 Aug is a holiday.
    assert CAL.add_business_time(ist(2025, 8, 14, 18, 30), H) == ist(2025, 8, 16, 10, 30)
    # Before opening, the clock starts at 10:00.
    assert CAL.add_business_time(ist(2025, 6, 2, 7), 2 * H) == ist(2025, 6, 2, 12)
    assert CAL.business_time_between(ist(2025, 6, 7, 18), ist(2025, 6, 9, 11)) == 2 * H
    assert CAL.business_time_between(ist(2025, 8, 14, 0), ist(2025, 8, 16, 0)) == 9 * H


@given(instants, durations)
def test_adding_then_measuring_gives_the_duration_back(start, duration):
    end = CAL.add_business_time(start, duration)
    assert end >= start
    assert CAL.business_time_between(start, end) == duration


@given(instants, durations)
def test_the_end_is_never_outside_business_hours_on_an_off_day(start, duration):
    assume(duration > dt.timedelta(0))
    local = CAL.add_business_time(start, duration).astimezone(IST)
    assert CAL.is_business_day(local.date())
    assert dt.time(10) < local.time() <= dt.time(19) or local.time() == dt.time(19)


@given(instants, instants, instants)
def test_measuring_adds_up(a, b, c):
    a, b, c = sorted([a, b, c])
    assert (CAL.business_time_between(a, b) + CAL.business_time_between(b, c)
            == CAL.business_time_between(a, c))


@given(instants, st.integers(min_value=0, max_value=600))
def test_nights_sundays_and_holidays_add_nothing(start, minutes):
    local = start.astimezone(IST)
    night = dt.datetime.combine(local.date(), dt.time(19), tzinfo=IST)
    assert CAL.business_time_between(night, night + dt.timedelta(minutes=min(minutes, 900))
                                     ) == dt.timedelta(0)
    sunday = local.date() + dt.timedelta(days=(6 - local.weekday()))
    start_of_sunday = dt.datetime.combine(sunday, dt.time(0), tzinfo=IST)
    assert CAL.business_time_between(start_of_sunday, start_of_sunday + dt.timedelta(days=1)
                                     ) == dt.timedelta(0)
    holiday = dt.datetime(2025, 8, 15, tzinfo=IST)
    assert CAL.business_time_between(holiday, holiday + dt.timedelta(days=1)) == dt.timedelta(0)


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles", "Pacific/Kiritimati",
                                  "Asia/Kolkata"])
def test_the_calendar_is_ist_whatever_the_servers_zone(zone, monkeypatch):
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        assert CAL.add_business_time(ist(2025, 6, 2, 18), 2 * H) == ist(2025, 6, 3, 11)
        assert CAL.business_time_between(ist(2025, 6, 2, 9), ist(2025, 6, 2, 20)) == 9 * H
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert os.environ.get("TZ") is None


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        CAL.add_business_time(dt.datetime(2025, 6, 2, 10), H)


# --------------------------------------------------------------------------------------------
# Routing
# --------------------------------------------------------------------------------------------

DAY = dt.date(2025, 6, 2)
PROJECT = uuid.uuid4()


def agents(n: int, capacity: int = 10_000) -> list[routing.Agent]:
    return [routing.Agent(agent_id=uuid.UUID(int=i + 1), capacity=capacity,
                          territories=(("pune", ""),)) for i in range(n)]


def run(pool: list[routing.Agent], day: dt.date = DAY) -> tuple[list[routing.Agent],
                                                                uuid.UUID | None]:
    """One routing decision applied to the pool, as the service stores it."""
    decision = routing.decide(pool, day)
    out = []
    for a in pool:
        won = a.agent_id == decision.agent_id
        out.append(routing.Agent(
            agent_id=a.agent_id, active=a.active, capacity=a.capacity,
            open_leads=a.open_leads + (1 if won else 0), territories=a.territories,
            projects=a.projects, holidays=a.holidays,
            rotation=decision.rotation.get(a.agent_id, a.rotation),
            last_assigned_at=a.last_assigned_at, in_rotation=decision.in_rotation[a.agent_id]))
    return out, decision.agent_id


@given(st.integers(min_value=1, max_value=8), st.integers(min_value=0, max_value=60))
def test_equal_capacity_keeps_everyone_within_one_lead(n, rounds):
    pool, counts = agents(n), {}
    for _ in range(rounds):
        pool, winner = run(pool)
        counts[winner] = counts.get(winner, 0) + 1
        got = [counts.get(a.agent_id, 0) for a in pool]
        assert max(got) - min(got) <= 1


@given(st.integers(min_value=2, max_value=6), st.integers(min_value=0, max_value=30),
       st.integers(min_value=1, max_value=30), st.integers(min_value=1, max_value=30))
def test_a_returning_agent_gets_no_catch_up_burst(n, before, away, after):
    pool = agents(n)
    for _ in range(before):
        pool, _ = run(pool)
    holiday = ((DAY, DAY),)
    pool[0] = routing.Agent(**{**_fields(pool[0]), "holidays": holiday})
    for _ in range(away):
        pool, winner = run(pool)
        assert winner != pool[0].agent_id  # on holiday: no leads
    pool[0] = routing.Agent(**{**_fields(pool[0]), "holidays": ()})
    taken = 0
    for _ in range(after):
        pool, winner = run(pool)
        taken += winner == pool[0].agent_id
        # Back in the rotation, the counters of everyone stay within one of each other.
        counters = [a.rotation for a in pool]
        assert max(counters) - min(counters) <= 1
    # At most a fair share (plus the round in progress), never the leads missed while away.
    assert taken <= -(-after // n) + 1


def _fields(a: routing.Agent) -> dict:
    return {f: getattr(a, f) for f in ("agent_id", "active", "capacity", "open_leads",
                                       "territories", "projects", "holidays", "rotation",
                                       "last_assigned_at", "in_rotation")}


@given(st.lists(st.integers(min_value=0, max_value=3), min_size=0, max_size=6))
def test_nobody_with_capacity_leaves_the_lead_unassigned(capacities):
    pool = [routing.Agent(agent_id=uuid.UUID(int=i + 1), capacity=c, open_leads=c,
                          territories=(("pune", ""),)) for i, c in enumerate(capacities)]
    decision = routing.decide(pool, DAY)
    assert decision.agent_id is None and decision.rotation == {}


def test_capacity_holidays_and_suspension_exclude_an_agent():
    a, b, c, d = (uuid.UUID(int=i) for i in range(1, 5))
    pool = [routing.Agent(agent_id=a, capacity=0, territories=(("pune", ""),)),
            routing.Agent(agent_id=b, capacity=5, holidays=((DAY, DAY),)),
            routing.Agent(agent_id=c, capacity=5, active=False),
            routing.Agent(agent_id=d, capacity=2, open_leads=1)]
    assert routing.decide(pool, DAY).agent_id == d
    assert routing.decide(pool[:3], DAY).agent_id is None


def test_the_pool_prefers_listing_agents_then_falls_back_to_the_territory():
    listing = routing.Agent(agent_id=uuid.UUID(int=1), capacity=5,
                            territories=(("pune", "baner"),), projects=frozenset({PROJECT}))
    city = routing.Agent(agent_id=uuid.UUID(int=2), capacity=5, territories=(("pune", ""),))
    elsewhere = routing.Agent(agent_id=uuid.UUID(int=3), capacity=5,
                              territories=(("mumbai", ""),), projects=frozenset({PROJECT}))
    other_locality = routing.Agent(agent_id=uuid.UUID(int=4), capacity=5,
                                   territories=(("pune", "wakad"),))
    everyone = [listing, city, elsewhere, other_locality]
    assert routing.pool(everyone, PROJECT, " Pune ", "BANER") == [listing]
    assert routing.pool(everyone, uuid.uuid4(), "Pune", "Baner") == [listing, city]
    assert routing.pool(everyone, PROJECT, "Nagpur", "") == []


def test_ties_go_to_the_longest_waiting_then_the_smallest_id():
    old = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    a = routing.Agent(agent_id=uuid.UUID(int=2), capacity=5, last_assigned_at=old,
                      in_rotation=True)
    b = routing.Agent(agent_id=uuid.UUID(int=1), capacity=5,
                      last_assigned_at=old + dt.timedelta(hours=1), in_rotation=True)
    c = routing.Agent(agent_id=uuid.UUID(int=3), capacity=5, last_assigned_at=old,
                      in_rotation=True)
    assert routing.decide([a, b, c], DAY).agent_id == a.agent_id


# --------------------------------------------------------------------------------------------
# The SLA clock
# --------------------------------------------------------------------------------------------


def test_a_waiting_stage_pauses_the_clock_and_the_pause_is_kept():
    created = ist(2025, 6, 2, 10)
    clock = pipeline.started(created)
    clock = pipeline.after_stage_change(clock, FLOW, CAL, "new", "contacted",
                                        created + H)  # first response: new follow-up clock
    assert (clock.kind, clock.cycle) == (pipeline.FOLLOW_UP, 2)
    clock = pipeline.after_stage_change(clock, FLOW, CAL, "contacted", "visit_scheduled",
                                        ist(2025, 6, 2, 13))  # 2 h ran
    paused = pipeline.elapsed(clock, CAL, ist(2025, 6, 5, 15))
    assert paused == 2 * H and pipeline.due_at(clock, CAL, 9 * H) is None
    clock = pipeline.after_stage_change(clock, FLOW, CAL, "visit_scheduled", "visited",
                                        ist(2025, 6, 5, 15))
    assert clock.cycle == 2 and clock.paused_seconds == ((9 * 2 + 6 + 5) * 3600)
    assert pipeline.elapsed(clock, CAL, ist(2025, 6, 5, 16)) == 3 * H
    # A later target (a policy change) still counts from the kept pause.
    assert pipeline.due_at(clock, CAL, 4 * H) == ist(2025, 6, 5, 17)
    closed = pipeline.after_stage_change(clock, FLOW, CAL, "visited", "won", ist(2025, 6, 6, 10))
    assert closed.kind is None


@given(instants.map(lambda at: at.replace(microsecond=0)),
       st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=6))
def test_elapsed_time_excludes_every_pause(start, gaps):
    """Alternate running and waiting; the elapsed time is the sum of the running spans (the
    paused time is kept in whole seconds)."""
    clock = pipeline.after_stage_change(pipeline.started(start), FLOW, CAL, "new",
                                        "contacted", start)
    now, ran, stage = start, dt.timedelta(0), "contacted"
    for i, gap in enumerate(gaps):
        later = now + dt.timedelta(minutes=gap)
        if i % 2 == 0:
            ran += CAL.business_time_between(now, later)
            clock = pipeline.after_stage_change(clock, FLOW, CAL, stage, "visit_scheduled",
                                                later)
            stage = "visit_scheduled"
        else:
            clock = pipeline.after_stage_change(clock, FLOW, CAL, stage, "visited", later)
            stage = "visited"
        now = later
    assert pipeline.elapsed(clock, CAL, now) == ran


@settings(max_examples=30)
@given(instants)
def test_due_at_is_when_the_elapsed_time_reaches_the_target(start):
    clock = pipeline.started(start)
    due = pipeline.due_at(clock, CAL, 2 * H)
    assert due is not None and pipeline.elapsed(clock, CAL, due) == 2 * H
