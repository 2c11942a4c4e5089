"""The business calendar of the SLA clock: working hours on working days in one time zone,
minus holidays. Pure (no I/O), so its properties are tested directly.

All inputs and outputs are aware datetimes; the calendar converts them to its own zone
(``Asia/Kolkata`` by default), so the answers do not depend on the server's zone. A business
day is one of ``days`` that is not a holiday; its business time is ``[start, end)`` local
wall-clock time.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable

import attrs

from propmubi_plugins.crm.settings import WEEKDAYS, CrmSettings

#: How far ahead add_business_time looks before deciding the calendar has no business days.
_MAX_DAYS = 366 * 20


def _aware(at: dt.datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the calendar takes aware datetimes only")


@attrs.frozen
class BusinessCalendar:
    """Working days (0 = Monday), daily hours and holidays, in ``zone``."""

    zone: dt.tzinfo
    days: frozenset[int]
    start: dt.time
    end: dt.time
    holidays: frozenset[dt.date] = frozenset()

    @classmethod
    def from_settings(cls, settings: CrmSettings) -> BusinessCalendar:
        """The calendar that ``[plugins.crm]`` describes."""
        return cls(zone=zoneinfo.ZoneInfo(settings.timezone),
                   days=frozenset(WEEKDAYS.index(d) for d in settings.business_days),
                   start=dt.time.fromisoformat(settings.business_start),
                   end=dt.time.fromisoformat(settings.business_end),
                   holidays=frozenset(dt.date.fromisoformat(d) for d in settings.holidays))

    def is_business_day(self, day: dt.date) -> bool:
        """Whether ``day`` (a local date) has business hours."""
        return day.weekday() in self.days and day not in self.holidays

    def _window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """The business hours of a local date, as aware UTC instants."""
        opens = dt.datetime.combine(day, self.start, tzinfo=self.zone)
        closes = dt.datetime.combine(day, self.end, tzinfo=self.zone)
        return opens.astimezone(dt.UTC), closes.astimezone(dt.UTC)

    def _days_from(self, day: dt.date) -> Iterable[dt.date]:
        for n in range(_MAX_DAYS):
            yield day + dt.timedelta(days=n)

    def business_time_between(self, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
        """The business time in ``[a, b)``; zero when ``b`` is not after ``a``."""
        _aware(a)
        _aware(b)
        if b <= a:
            return dt.timedelta(0)
        total = dt.timedelta(0)
        day, last = a.astimezone(self.zone).date(), b.astimezone(self.zone).date()
        while day <= last:
            if self.is_business_day(day):
                opens, closes = self._window(day)
                lo, hi = max(a, opens), min(b, closes)
                if hi > lo:
                    total += hi - lo
            day += dt.timedelta(days=1)
        return total

    def add_business_time(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        """The instant when ``duration`` of business time has passed since ``start`` (UTC).

        A zero duration from outside business hours is ``start`` itself.

        :raises ValueError: the duration is negative, or the calendar has no business day.
        """
        _aware(start)
        if duration < dt.timedelta(0):
            raise ValueError("a negative duration")
        if duration == dt.timedelta(0):
            return start.astimezone(dt.UTC)
        left = duration
        for day in self._days_from(start.astimezone(self.zone).date()):
            if not self.is_business_day(day):
                continue
            opens, closes = self._window(day)
            lo = max(start, opens)
            if closes <= lo:
                continue
            if lo + left <= closes:
                return (lo + left).astimezone(dt.UTC)
            left -= closes - lo
        raise ValueError("the calendar has no business days")
