"""Sign-in lockout with back-off, counted per e-mail address and per client address.

After ``max_failures`` failures for an address (``max_failures_per_ip`` for a client), sign-in
is refused for ``lockout_base`` seconds; each further failure doubles the lock, up to
``lockout_max``. Unknown addresses are counted like known ones, so the lockout reveals nothing
about which accounts exist. A success clears the address's count (not the client's: one valid
account must not reset the counter of a client guessing at others).
"""

from __future__ import annotations

import math

from propmubi.config import ConsoleSection
from propmubi.keys import Keys
from propmubi.redis import Redis

__all__ = ["Lockout"]


class Lockout:
    """Counts failures and answers "locked for how long?"."""

    def __init__(self, redis: Redis, keys: Keys, settings: ConsoleSection) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings

    def _scopes(self, email: str, ip: str) -> list[tuple[str, str, int]]:
        return [("email", email.strip().lower(), self.settings.max_failures),
                ("ip", ip, self.settings.max_failures_per_ip)]

    async def locked_for(self, email: str, ip: str) -> float:
        """Seconds until sign-in may be tried again for this address and client (0: now)."""
        longest = 0
        for scope, ident, _ in self._scopes(email, ip):
            ttl = await self.redis.pttl(self.keys.console_lock(scope, ident))
            longest = max(longest, ttl)
        return longest / 1000

    def lock_seconds(self, failures: int, threshold: int) -> float:
        """How long the ``failures``-th failure locks (0 below the threshold)."""
        if failures < threshold:
            return 0.0
        doublings = min(failures - threshold, 30)  # 2**30 * anything is past any cap
        factor: int = 2 ** doublings  # typeshed types int ** int as Any
        return min(self.settings.lockout_base * factor, self.settings.lockout_max)

    async def failed(self, email: str, ip: str) -> float:
        """Count a failure; return the lock it starts in seconds (0: none)."""
        longest = 0.0
        window_ms = int(self.settings.failure_window * 1000)
        for scope, ident, threshold in self._scopes(email, ip):
            key = self.keys.console_failures(scope, ident)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.pexpire(key, window_ms)
                failures, _ = await pipe.execute()
            seconds = self.lock_seconds(int(failures), threshold)
            if seconds:
                await self.redis.set(self.keys.console_lock(scope, ident), "1",
                                     px=max(1, math.ceil(seconds * 1000)))
                longest = max(longest, seconds)
        return longest

    async def succeeded(self, email: str) -> None:
        """Forget the address's failures after a successful sign-in."""
        ident = email.strip().lower()
        await self.redis.delete(self.keys.console_failures("email", ident),
                                self.keys.console_lock("email", ident))
