"""Visit slots, pure (no I/O), so their properties are tested directly.

A project's slots are the same for every project: on each visit day of the calendar (a
business day, never a holiday), back-to-back slots of ``length`` from the opening time, the
last one ending at or before the closing time. Times are aware; the answers are UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from propmubi_plugins.crm.calendar import BusinessCalendar


def _local_day(calendar: BusinessCalendar, at: dt.datetime) -> dt.date:
    return at.astimezone(calendar.zone).date()


def day_slots(calendar: BusinessCalendar, day: dt.date, length: dt.timedelta
              ) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """The slots of one local date, in order (none on a day off)."""
    if not calendar.is_business_day(day):
        return
    opens = dt.datetime.combine(day, calendar.start, tzinfo=calendar.zone)
    closes = dt.datetime.combine(day, calendar.end, tzinfo=calendar.zone)
    start = opens
    while start + length <= closes:
        yield start.astimezone(dt.UTC), (start + length).astimezone(dt.UTC)
        start += length


def slots_between(calendar: BusinessCalendar, length: dt.timedelta, lo: dt.datetime,
                  hi: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """Every slot starting in ``[lo, hi)``, in order."""
    if length <= dt.timedelta(0):
        raise ValueError("a slot has a positive length")
    out: list[tuple[dt.datetime, dt.datetime]] = []
    if hi <= lo:
        return out
    day, last = _local_day(calendar, lo), _local_day(calendar, hi)
    while day <= last:
        out.extend(s for s in day_slots(calendar, day, length) if lo <= s[0] < hi)
        day += dt.timedelta(days=1)
    return out


def slot_at(calendar: BusinessCalendar, length: dt.timedelta, at: dt.datetime
            ) -> tuple[dt.datetime, dt.datetime] | None:
    """The slot that starts exactly at ``at`` (None: ``at`` is no slot's start)."""
    for slot in day_slots(calendar, _local_day(calendar, at), length):
        if slot[0] == at:
            return slot
    return None
