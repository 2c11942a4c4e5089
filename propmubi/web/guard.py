"""Rate limits and timeouts of a route, applied inside its endpoint wrapper.

Who is counted: a route that needs a token (``roles=``) answers a request without a valid
one 401 before anything is counted, so anonymous noise never uses up anyone's budget. A
request with a token counts per subject at the route's limit, and per client IP against a
ceiling ``ratelimit.ip_ceiling_factor`` times higher (an office, or a mobile carrier's NAT,
puts many people behind one address); a request without one counts per IP at the route's
limit. The two per-IP counters are apart, so anonymous traffic from an address never
refuses its signed-in users.

Decisions that depend only on the route (does it count? which limit? which scope? how long may
it run?) are made once, when the route is mounted; per request, only the counting and the timer
remain. Living in the endpoint rather than in a middleware saves a layer on every request, and
runs after the plugins' middlewares, so per-subject limits see the subject they set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web

from propmubi.config import Config
from propmubi.errors import ProblemError, TimedOut
from propmubi.web.appkeys import PRINCIPAL, SUBJECT
from propmubi.web.auth import check_roles
from propmubi.web.ratelimit import RateLimit, RateLimiter, client_ip

__all__ = ["Guard", "Plan", "guarded"]

Call = Callable[[web.Request], Awaitable[web.StreamResponse]]
_NONE: dict[str, str] = {}


@attrs.frozen
class Plan:
    """What the guard does for one route."""

    timeout: float
    # None: the route is never rate limited.
    scope: str | None = None
    # Requests without a subject, per client IP.
    per_ip: RateLimit | None = None
    # Requests with a subject: per subject, and all of an address's together (the ceiling).
    per_subject: RateLimit | None = None
    ip_ceiling: RateLimit | None = None
    # The route's roles= (None: public): a request without a principal gets 401 uncounted.
    roles: tuple[str, ...] | None = None


class _Deadline:
    """Cancels the request's task when its time is up; knows whether it did."""

    __slots__ = ("expired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.expired = False

    def __call__(self) -> None:
        self.expired = True
        self.task.cancel()


class Guard:
    """Applies the configured limits and timeouts; one per application."""

    def __init__(self, config: Config, limiter: Callable[[], RateLimiter | None]) -> None:
        settings = config.ratelimit
        self.enabled = settings.enabled
        self.per_ip = RateLimit.parse(settings.per_ip)
        self.per_subject = RateLimit.parse(settings.per_subject)
        self.ceiling_factor = settings.ip_ceiling_factor
        self.trust_forwarded = config.http.trust_forwarded
        self.default_timeout = config.http.request_timeout
        self.limiter = limiter

    def plan(self, path: str, name: str, rate_limit: RateLimit | bool | None,
             timeout: float | None, roles: tuple[str, ...] | None = None) -> Plan:
        """Decide, once per route, what :meth:`run` will do for it.

        :param rate_limit: the route's declared limit; None takes the configured defaults for
            ``/api`` routes (and none elsewhere); False exempts the route.
        :param roles: the route's ``roles=``, when it needs a token.
        """
        seconds = timeout or self.default_timeout
        if rate_limit is False or not self.enabled:
            return Plan(timeout=seconds)
        if isinstance(rate_limit, RateLimit):
            scope, per_ip, per_subject = name, rate_limit, rate_limit
        elif path.startswith("/api/"):
            scope, per_ip, per_subject = "api", self.per_ip, self.per_subject
        else:
            return Plan(timeout=seconds)
        ceiling = RateLimit(per_subject.count * self.ceiling_factor, per_subject.period)
        return Plan(timeout=seconds, scope=scope, per_ip=per_ip, per_subject=per_subject,
                    ip_ceiling=ceiling, roles=roles)

    async def _count(self, request: web.Request, plan: Plan) -> dict[str, str]:
        limiter = self.limiter()
        if limiter is None:
            return _NONE
        ip = client_ip(request, self.trust_forwarded)
        subject = request.get(SUBJECT)
        if subject:
            checks = [("subject", str(subject), plan.per_subject),
                      ("ip-signed-in", ip, plan.ip_ceiling)]
        else:
            checks = [("ip", ip, plan.per_ip)]
        return await limiter.check(plan.scope, checks)  # type: ignore[arg-type]

    async def run(self, request: web.Request, plan: Plan, call: Call) -> web.StreamResponse:
        """Count the request, then await ``call(request)`` under the route's deadline (504
        past it).

        :raises Unauthorized: the route needs a token and the request has no valid one
            (before it is counted).
        """
        if plan.roles is not None and request.get(PRINCIPAL) is None:
            check_roles(request, plan.roles)  # no principal: always the route's 401
        headers = await self._count(request, plan) if plan.scope is not None else _NONE
        task = asyncio.current_task()
        assert task is not None
        deadline = _Deadline(task)
        # loop.call_later costs a fraction of asyncio.timeout(), and this runs per request.
        timer = asyncio.get_running_loop().call_later(plan.timeout, deadline)
        try:
            response = await call(request)
        except asyncio.CancelledError:
            if not deadline.expired:
                raise
            task.uncancel()
            problem = TimedOut(f"no response within {plan.timeout:g}s")
            for name, value in headers.items():
                problem.headers.setdefault(name, value)
            raise problem from None
        except ProblemError as exc:
            # A refused request counted against the limit too; say how much is left.
            for name, value in headers.items():
                exc.headers.setdefault(name, value)
            raise
        finally:
            timer.cancel()
        if deadline.expired:
            task.uncancel()  # the handler swallowed the cancellation and answered anyway
        if headers:
            response.headers.update(headers)
        return response


def guarded(guard: Guard, path: str, name: str, handler: Call) -> Call:
    """Wrap a plain aiohttp handler (a console page, say) with the default timeout and, under
    ``/api``, the default rate limits."""
    plan = guard.plan(path, name, None, None)

    async def wrapper(request: web.Request) -> web.StreamResponse:
        return await guard.run(request, plan, handler)

    wrapper.__name__ = getattr(handler, "__name__", name)
    return wrapper
