"""When a message may go out: quiet hours, the promotional window and the daily cap's day.

Pure functions of an instant (aware UTC) and the windows, so that they are tested with any
clock and any time zone. A window is a daily span of local clock time ``[start, end)`` in one
zone; it wraps past midnight when ``end`` is before ``start`` (22:00-08:00), and ``start ==
end`` makes it empty.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import attrs

__all__ = ["Window", "local_day", "next_allowed", "next_local_midnight"]

#: How many boundaries :func:`next_allowed` crosses before it gives up (the windows then
#: never overlap).
_STEPS = 8


@attrs.frozen
class Window:
    """A daily span of local time: ``start``/``end`` in minutes after midnight in ``zone``."""

    start: int
    end: int
    zone: zoneinfo.ZoneInfo

    def contains(self, at: dt.datetime) -> bool:
        """Whether the local clock at ``at`` is inside the window."""
        if self.start == self.end:
            return False
        local = at.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def next_at(self, at: dt.datetime, minute: int) -> dt.datetime:
        """The first instant after ``at`` when the local clock reads ``minute`` (aware UTC)."""
        local = at.astimezone(self.zone)
        day = local.date()
        for offset in range(3):
            candidate = dt.datetime.combine(
                day + dt.timedelta(days=offset), dt.time(minute // 60, minute % 60),
                tzinfo=self.zone).astimezone(dt.UTC)
            if candidate > at:
                return candidate
        raise AssertionError("unreachable: a clock time recurs within three days")


def next_allowed(at: dt.datetime, quiet: Window | None, open_window: Window | None
                 ) -> dt.datetime | None:
    """The first instant at or after ``at`` that is outside ``quiet`` and inside
    ``open_window`` (either may be None: no such rule); None when no instant ever is."""
    when = at
    for _ in range(_STEPS):
        moved = False
        if quiet is not None and quiet.contains(when):
            when = quiet.next_at(when, quiet.end)
            moved = True
        if open_window is not None and open_window.start != open_window.end \
                and not open_window.contains(when):
            when = open_window.next_at(when, open_window.start)
            moved = True
        if not moved:
            return when
    return None


def local_day(at: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.date:
    """The recipient's calendar day at ``at``."""
    return at.astimezone(zone).date()


def next_local_midnight(at: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The start of the recipient's next day (aware UTC)."""
    day = local_day(at, zone) + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=zone).astimezone(dt.UTC)
