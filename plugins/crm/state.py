"""The CRM's per-process state, built once from its settings, and ``Ctx``, the typed context
every module annotates: the business calendar, the pipeline, the enquiry limits and their
Redis counter, the partners' key hashes, and the calendar of visit slots."""

from __future__ import annotations

import datetime as dt

import attrs

from propmubi.context import PluginContext
from propmubi.web.ratelimit import RateLimit, RateLimiter
from propmubi_plugins.crm.calendar import BusinessCalendar
from propmubi_plugins.crm.pipeline import Pipeline
from propmubi_plugins.crm.settings import WEEKDAYS, CrmSettings


@attrs.define(eq=False)
class CrmState:
    """What one process of the plugin holds.

    :ivar partner_keys: partner name -> SHA-256 digest of its API key.
    """

    started_at: dt.datetime
    calendar: BusinessCalendar
    pipeline: Pipeline
    limiter: RateLimiter
    per_phone: RateLimit
    per_ip: RateLimit
    partner_keys: dict[str, bytes]
    #: The calendar of visit slots: the business calendar, narrowed by the visit_* settings.
    visit_calendar: BusinessCalendar


#: The plugin's context, as every module of the plugin annotates it.
Ctx = PluginContext[CrmSettings, CrmState]


async def start(ctx: Ctx) -> CrmState:
    """Build this process's state from ``[plugins.crm]``."""
    settings = ctx.settings
    partners = {}
    for entry in settings.partner_keys:
        name, _, digest = entry.partition(":")
        partners[name] = bytes.fromhex(digest)
    calendar = BusinessCalendar.from_settings(settings)
    visits = attrs.evolve(
        calendar,
        days=frozenset(WEEKDAYS.index(d) for d in settings.visit_days) or calendar.days,
        start=dt.time.fromisoformat(settings.visit_start) if settings.visit_start
        else calendar.start,
        end=dt.time.fromisoformat(settings.visit_end) if settings.visit_end else calendar.end)
    return CrmState(started_at=ctx.clock.now(),
                    calendar=calendar,
                    pipeline=Pipeline.from_settings(settings),
                    limiter=RateLimiter(ctx.redis, ctx.services.keys),
                    per_phone=RateLimit.parse(settings.enquiry_per_phone),
                    per_ip=RateLimit.parse(settings.enquiry_per_ip),
                    partner_keys=partners, visit_calendar=visits)


async def stop(ctx: Ctx) -> None:
    """Nothing to release."""
