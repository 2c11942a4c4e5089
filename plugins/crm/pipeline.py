"""The pipeline's stages and the SLA clock's rules, pure (no I/O).

Stages come from ``[plugins.crm] stages`` (the first is where a lead starts), some of them
terminal (a closed lead), some waiting (the buyer's turn: the SLA clock pauses), some needing a
reason (``lost``).

The SLA clock of an open lead:

- **first response**: from creation until the first move out of the first stage, at most
  ``first_response_minutes`` of business time;
- **follow-up**: then from each stage change to the next, at most ``follow_up_minutes``;
- entering a **waiting** stage pauses the running clock; leaving it resumes the same clock,
  with the paused business time added to ``paused_seconds`` (the pause is stored, so a change
  of the targets later keeps it); a move between two non-waiting stages starts a new
  follow-up clock;
- a terminal stage stops the clock.

Each new clock has a new ``cycle`` number: the SLA job marks warnings and breaches per cycle,
so a late job run never acts on a clock that has been replaced.
"""

from __future__ import annotations

import datetime as dt

import attrs

from propmubi_plugins.crm.calendar import BusinessCalendar
from propmubi_plugins.crm.settings import CrmSettings

FIRST_RESPONSE = "first_response"
FOLLOW_UP = "follow_up"


@attrs.frozen
class Pipeline:
    """The stages, in order, and what each kind means."""

    keys: tuple[str, ...]
    labels: dict[str, str]
    terminal: frozenset[str]
    waiting: frozenset[str]
    reason: frozenset[str]

    @classmethod
    def from_settings(cls, settings: CrmSettings) -> Pipeline:
        pairs = [s.partition(":") for s in settings.stages]
        return cls(keys=tuple(k for k, _, _ in pairs),
                   labels={k: (label or k.replace("_", " ").capitalize())
                           for k, _, label in pairs},
                   terminal=frozenset(settings.terminal_stages),
                   waiting=frozenset(settings.waiting_stages),
                   reason=frozenset(settings.reason_stages))

    @property
    def first(self) -> str:
        return self.keys[0]

    @property
    def open_keys(self) -> tuple[str, ...]:
        return tuple(k for k in self.keys if k not in self.terminal)

    def label(self, key: str) -> str:
        return self.labels.get(key, key)


@attrs.frozen
class Clock:
    """A lead's SLA clock (``kind`` None: stopped)."""

    kind: str | None
    cycle: int
    started_at: dt.datetime | None
    paused_at: dt.datetime | None = None
    paused_seconds: int = 0


def started(now: dt.datetime) -> Clock:
    """The clock of a new lead."""
    return Clock(FIRST_RESPONSE, 1, now)


def after_stage_change(clock: Clock, pipeline: Pipeline, calendar: BusinessCalendar,
                       from_stage: str, to_stage: str, now: dt.datetime) -> Clock:
    """The clock once a lead moved from ``from_stage`` to ``to_stage`` at ``now``."""
    waiting = to_stage in pipeline.waiting
    if to_stage in pipeline.terminal:
        return Clock(None, clock.cycle + 1, None)
    if clock.kind is None or from_stage == pipeline.first:
        return Clock(FOLLOW_UP, clock.cycle + 1, now, now if waiting else None)
    if waiting:
        return clock if clock.paused_at is not None else attrs.evolve(clock, paused_at=now)
    if clock.paused_at is not None:
        pause = calendar.business_time_between(clock.paused_at, now)
        return attrs.evolve(clock, paused_at=None,
                            paused_seconds=clock.paused_seconds + int(pause.total_seconds()))
    return Clock(FOLLOW_UP, clock.cycle + 1, now)


def target(kind: str, settings: CrmSettings) -> dt.timedelta:
    """The business time a clock of ``kind`` allows."""
    minutes = (settings.first_response_minutes if kind == FIRST_RESPONSE
               else settings.follow_up_minutes)
    return dt.timedelta(minutes=minutes)


def elapsed(clock: Clock, calendar: BusinessCalendar, now: dt.datetime) -> dt.timedelta:
    """Business time the clock has run (pauses excluded)."""
    if clock.kind is None or clock.started_at is None:
        return dt.timedelta(0)
    end = clock.paused_at or now
    ran = calendar.business_time_between(clock.started_at, end)
    return max(dt.timedelta(0), ran - dt.timedelta(seconds=clock.paused_seconds))


def due_at(clock: Clock, calendar: BusinessCalendar, allowed: dt.timedelta
           ) -> dt.datetime | None:
    """When a running clock reaches ``allowed`` (None: stopped or paused)."""
    if clock.kind is None or clock.started_at is None or clock.paused_at is not None:
        return None
    return calendar.add_business_time(
        clock.started_at, allowed + dt.timedelta(seconds=clock.paused_seconds))
