"""Sign-in lockout with back-off, counted per e-mail address and per client address.

Every sign-in is counted *before* its password is checked, in one Redis script that also
refuses it when the address or the client is locked: however many sign-ins arrive at once,
each gets its own number, and only those below the limit are checked. The attempt that
reaches ``max_failures`` for an address (``max_failures_per_ip`` for a client) locks it
right away, before its own password is checked, for ``lockout_base`` seconds; once the lock
has passed, each further attempt locks again for twice as long, up to ``lockout_max``.
Unknown addresses are counted like known ones, so the lockout reveals nothing about which
accounts exist.

A success takes back its own attempt and nothing else: the failures around it stay counted
(otherwise a right password sent among parallel wrong ones would reset the count and let
them through), and it lifts a lock only when what is left is under the limit. Failures are
forgotten ``failure_window`` seconds after the last one.

A Redis that does not answer fails sign-in *closed*, and fast: every call here is bounded
by ``redis.record_timeout`` and the client's circuit breaker, and a call that gets no answer
raises :class:`~propmubi.redis.RedisUnavailable`, which the console shows as a 503 page
("try again shortly") within that bound. Failing open would let password guessing run
unthrottled exactly while Redis is impaired, and would gain nothing: the session a sign-in
creates lives in Redis too.
"""

from __future__ import annotations

from propmubi.config import ConsoleSection
from propmubi.keys import Keys
from propmubi.redis import Redis, bounded

__all__ = ["Attempt", "Lockout"]

# KEYS: lock, counter for each scope (email, ip).
# ARGV: window_ms, base_ms, max_ms, then each scope's threshold.
# Returns {0, ms} when locked (nothing counted), else {1, count of each scope...}.
_ATTEMPT = """
local longest = 0
for i = 1, #KEYS, 2 do
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl > longest then longest = ttl end
end
if longest > 0 then return {0, longest} end
local out = {1}
local base, cap = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, #KEYS, 2 do
  local scope = (i + 1) / 2
  local threshold = tonumber(ARGV[3 + scope])
  local n = redis.call('INCR', KEYS[i + 1])
  if n == 1 then redis.call('PEXPIRE', KEYS[i + 1], ARGV[1]) end
  if n >= threshold then
    local ms = math.min(base * 2 ^ math.min(n - threshold, 30), cap)
    redis.call('SET', KEYS[i], '1', 'PX', string.format('%d', math.max(1, math.ceil(ms))))
  end
  out[scope + 1] = n
end
return out
"""

# KEYS: lock, counter for each scope; ARGV: each scope's threshold.
_TAKE_BACK = """
for i = 1, #KEYS, 2 do
  local threshold = tonumber(ARGV[(i + 1) / 2])
  local left = 0
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    left = redis.call('DECR', KEYS[i + 1])
    if left <= 0 then redis.call('DEL', KEYS[i + 1]) end
  end
  if left < threshold then redis.call('DEL', KEYS[i]) end
end
return 1
"""


class Attempt:
    """The answer to "may this sign-in be checked?"."""

    def __init__(self, wait: float) -> None:
        #: Seconds until sign-in may be tried again (0: this attempt was counted, check it).
        self.wait = wait

    @property
    def allowed(self) -> bool:
        """Whether the password may be checked."""
        return self.wait <= 0


class Lockout:
    """Counts attempts and answers "locked for how long?"."""

    def __init__(self, redis: Redis, keys: Keys, settings: ConsoleSection) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self._attempt = redis.register_script(_ATTEMPT)
        self._take_back = redis.register_script(_TAKE_BACK)

    def _scopes(self, email: str, ip: str) -> list[tuple[str, str, int]]:
        return [("email", email.strip().lower(), self.settings.max_failures),
                ("ip", ip, self.settings.max_failures_per_ip)]

    def _keys(self, email: str, ip: str) -> list[str]:
        keys = []
        for scope, ident, _ in self._scopes(email, ip):
            keys += [self.keys.console_lock(scope, ident),
                     self.keys.console_failures(scope, ident)]
        return keys

    async def locked_for(self, email: str, ip: str) -> float:
        """Seconds until sign-in may be tried again for this address and client (0: now)."""
        longest = 0
        async with bounded(self.redis, "record"):
            for scope, ident, _ in self._scopes(email, ip):
                ttl = await self.redis.pttl(self.keys.console_lock(scope, ident))
                longest = max(longest, ttl)
        return longest / 1000

    def lock_seconds(self, failures: int, threshold: int) -> float:
        """How long the ``failures``-th attempt locks (0 below the threshold)."""
        if failures < threshold:
            return 0.0
        doublings = min(failures - threshold, 30)  # 2**30 * anything is past any cap
        factor: int = 2 ** doublings  # typeshed types int ** int as Any
        return min(self.settings.lockout_base * factor, self.settings.lockout_max)

    async def attempt(self, email: str, ip: str) -> Attempt:
        """Count a sign-in before its password is checked (atomically, for both scopes), or
        refuse it while the address or the client is locked."""
        s = self.settings
        args: list[int] = [max(1, int(s.failure_window * 1000)), int(s.lockout_base * 1000),
                           int(s.lockout_max * 1000)]
        args += [threshold for _, _, threshold in self._scopes(email, ip)]
        async with bounded(self.redis, "record"):
            result = await self._attempt(keys=self._keys(email, ip), args=args)
        if int(result[0]) == 1:
            return Attempt(0.0)
        return Attempt(max(int(result[1]), 1) / 1000)

    async def failed(self, email: str, ip: str) -> None:
        """A counted attempt failed: failures are forgotten a window after the last one."""
        window_ms = max(1, int(self.settings.failure_window * 1000))
        async with bounded(self.redis, "record"):
            for scope, ident, _ in self._scopes(email, ip):
                await self.redis.pexpire(self.keys.console_failures(scope, ident), window_ms)

    async def succeeded(self, email: str, ip: str) -> None:
        """A counted attempt succeeded: take it back (only it), and lift a lock when what is
        left is under the limit."""
        async with bounded(self.redis, "record"):
            await self._take_back(keys=self._keys(email, ip),
                                  args=[threshold for _, _, threshold in self._scopes(email, ip)])
