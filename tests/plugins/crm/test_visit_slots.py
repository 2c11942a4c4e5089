"""Properties of visit slots (``visits/slots.py``, pure): every slot lies in business hours
of a business day (never a holiday or a day off), has the slot's length, starts on the grid
from the opening time, and ``slot_at`` recognises exactly the starts that slots_between
lists."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from hypothesis import given
from hypothesis import strategies as st

from propmubi_plugins.crm.calendar import BusinessCalendar
from propmubi_plugins.crm.settings import CrmSettings
from propmubi_plugins.crm.visits import slots

IST = zoneinfo.ZoneInfo("Asia/Kolkata")
CAL = BusinessCalendar.from_settings(CrmSettings(holidays=("2025-08-15",)))

instants = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2026, 12, 31),
                        timezones=st.just(dt.UTC))
lengths = st.sampled_from([15, 30, 45, 60, 90, 120, 240]).map(lambda m: dt.timedelta(minutes=m))
spans = st.integers(min_value=0, max_value=24 * 10).map(lambda h: dt.timedelta(hours=h))


def test_a_monday_by_example():
    monday = dt.datetime(2025, 6, 2, tzinfo=IST)
    got = slots.slots_between(CAL, dt.timedelta(hours=1), monday, monday + dt.timedelta(days=7))
    starts = [s.astimezone(IST) for s, _ in got]
    assert len(got) == 9 * 6  # 10:00-19:00, Monday to Saturday; no Sunday
    assert (starts[0].hour, starts[8].hour, starts[9].day) == (10, 18, 3)
    assert all(s.weekday() != 6 for s in starts)
    assert slots.slots_between(CAL, dt.timedelta(minutes=120), monday,
                               monday + dt.timedelta(days=1))[-1][1].astimezone(IST).hour == 18
    holiday = dt.datetime(2025, 8, 15, tzinfo=IST)
    assert slots.slots_between(CAL, dt.timedelta(hours=1), holiday,
                               holiday + dt.timedelta(days=1)) == []


@given(instants, spans, lengths)
def test_every_slot_is_in_business_hours_on_the_grid(lo, span, length):
    got = slots.slots_between(CAL, length, lo, lo + span)
    opens = dt.datetime.combine(dt.date(2025, 1, 1), CAL.start)
    for start, end in got:
        assert lo <= start < lo + span and end - start == length
        local_start, local_end = start.astimezone(IST), end.astimezone(IST)
        assert CAL.is_business_day(local_start.date())
        assert local_start.date() == local_end.date()
        assert CAL.start <= local_start.time() and local_end.time() <= CAL.end
        since_open = dt.datetime.combine(dt.date(2025, 1, 1), local_start.time()) - opens
        assert since_open % length == dt.timedelta(0)
        assert CAL.business_time_between(start, end) == length
    assert [s for s, _ in got] == sorted({s for s, _ in got})


@given(instants, spans, lengths)
def test_slot_at_knows_exactly_the_listed_starts(lo, span, length):
    listed = dict(slots.slots_between(CAL, length, lo, lo + span))
    for start, end in listed.items():
        assert slots.slot_at(CAL, length, start) == (start, end)
        assert slots.slot_at(CAL, length, start + dt.timedelta(minutes=1)) is None
        assert slots.slot_at(CAL, length, start - dt.timedelta(seconds=1)) is None
    found = slots.slot_at(CAL, length, lo)
    assert found is None or lo in listed or span == dt.timedelta(0)


@given(instants, spans, spans, lengths)
def test_ranges_split_anywhere_give_the_same_slots(lo, a, b, length):
    mid, hi = lo + a, lo + a + b
    whole = slots.slots_between(CAL, length, lo, hi)
    assert whole == (slots.slots_between(CAL, length, lo, mid)
                     + slots.slots_between(CAL, length, mid, hi))
