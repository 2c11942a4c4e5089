"""Server-side console sessions in Redis, with their CSRF token and flash messages.

The cookie holds only a random id (``secrets.token_urlsafe(32)``); Redis holds the session
under the id's SHA-256, so a copy of Redis yields no usable cookie. A session without a user
(a "pre-login" session) exists only to carry the sign-in form's CSRF token; signing in
replaces it with a new id, so a cookie planted before sign-in is worthless after it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import attrs
import orjson
from aiohttp import web

from propmubi.config import Config
from propmubi.redis import bounded
from propmubi.services import Services

__all__ = ["COOKIE_NAME", "CSRF_FIELD", "SESSION", "Session", "SessionStore"]

COOKIE_NAME = "propmubi_console"
COOKIE_PATH = "/console"
#: The form field (or ``X-CSRF-Token`` header) carrying the synchronizer token.
CSRF_FIELD = "csrf_token"
#: This request's session (None when the browser has none, or it ended).
SESSION: web.RequestKey[Session | None] = web.RequestKey("propmubi_console_session")


@attrs.define
class Session:
    """One browser's console session."""

    sid: str
    csrf: str
    created_at: float
    last_seen: float
    user_id: str | None = None
    #: The signed-in account's :func:`propmubi.console.accounts.credential_stamp` at sign-in:
    #: a password changed since then ends the session.
    stamp: str | None = None
    flashes: list[tuple[str, str]] = attrs.Factory(list)
    #: The cookie must be (re)sent: the session is new or its id was rotated.
    new: bool = False
    #: Something other than ``last_seen`` changed and must be written back.
    dirty: bool = False
    #: Ended (sign-out): the cookie must be cleared.
    ended: bool = False

    def flash(self, message: str, category: str = "info") -> None:
        """Queue a message shown once, on the next page rendered."""
        self.flashes.append((category, message))
        self.dirty = True

    def pop_flashes(self) -> list[tuple[str, str]]:
        """Take the queued messages (they are shown once)."""
        out, self.flashes = self.flashes, []
        if out:
            self.dirty = True
        return out

    def csrf_ok(self, token: str | None) -> bool:
        """Whether ``token`` is this session's CSRF token (constant-time comparison)."""
        return bool(token) and hmac.compare_digest(token.encode(), self.csrf.encode())  # type: ignore[union-attr]

    def _dump(self) -> bytes:
        return orjson.dumps({"csrf": self.csrf, "created_at": self.created_at,
                             "last_seen": self.last_seen, "user_id": self.user_id,
                             "stamp": self.stamp, "flashes": self.flashes})


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class SessionStore:
    """Creates, loads, saves, rotates and ends sessions for one configuration."""

    def __init__(self, services: Services) -> None:
        self.redis = services.redis
        self.keys = services.keys
        settings = services.config.console
        self.idle = settings.idle_timeout
        self.absolute = settings.absolute_timeout

    def _ttl_ms(self, session: Session, now: float) -> int:
        # The key dies at the idle deadline or at the absolute one, whichever is first.
        left = min(self.idle, session.created_at + self.absolute - now)
        return max(1, int(left * 1000))

    def new(self, user_id: str | None = None, flashes: list[tuple[str, str]] | None = None,
            stamp: str | None = None) -> Session:
        """A fresh session (saved by :meth:`save`); its cookie is sent with the response."""
        now = time.time()
        return Session(sid=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32),
                       created_at=now, last_seen=now, user_id=user_id, stamp=stamp,
                       flashes=list(flashes or []), new=True, dirty=True)

    async def load(self, sid: str) -> Session | None:
        """The live session with this cookie value, touched (idle timeout slides); None when
        it does not exist or has timed out."""
        if not sid or len(sid) > 128:
            return None
        key = self.keys.console_session(_digest(sid))
        async with bounded(self.redis, "record"):  # Redis holds sessions: 503 past the bound
            raw = await self.redis.get(key)
        if raw is None:
            return None
        data = orjson.loads(raw)
        now = time.time()
        session = Session(sid=sid, csrf=data["csrf"], created_at=data["created_at"],
                          last_seen=data["last_seen"], user_id=data.get("user_id"),
                          stamp=data.get("stamp"),
                          flashes=[tuple(f) for f in data.get("flashes", [])])
        # Redis expiry is the main clock; these checks cover a key whose TTL was set under
        # longer timeouts (a configuration change) and clock rounding.
        if now - session.last_seen > self.idle or now - session.created_at > self.absolute:
            async with bounded(self.redis, "record"):
                await self.redis.delete(key)
            return None
        session.last_seen = now
        async with bounded(self.redis, "record"):
            await self.redis.set(key, session._dump(), px=self._ttl_ms(session, now))
        return session

    async def save(self, session: Session) -> None:
        """Write the session back (no-op after :meth:`end`)."""
        if session.ended:
            return
        now = time.time()
        async with bounded(self.redis, "record"):
            await self.redis.set(self.keys.console_session(_digest(session.sid)),
                                 session._dump(), px=self._ttl_ms(session, now))
        session.dirty = False

    async def end(self, session: Session) -> None:
        """Delete the session from Redis; its cookie no longer works."""
        async with bounded(self.redis, "record"):
            await self.redis.delete(self.keys.console_session(_digest(session.sid)))
        session.ended = True

    async def rotate(self, session: Session | None, user_id: str, stamp: str) -> Session:
        """End ``session`` (a pre-login one) and start a signed-in one under a new id, for
        the account ``user_id`` whose password has the credential stamp ``stamp``."""
        flashes = session.flashes if session is not None else []
        if session is not None:
            await self.end(session)
        fresh = self.new(user_id=user_id, flashes=flashes, stamp=stamp)
        await self.save(fresh)
        return fresh


def set_cookie(response: web.StreamResponse, session: Session, config: Config) -> None:
    """Send the session cookie: HttpOnly, SameSite=Lax, scoped to /console, Secure outside
    development and tests (which run over plain http on localhost)."""
    response.set_cookie(COOKIE_NAME, session.sid, path=COOKIE_PATH, httponly=True,
                        samesite="Lax",
                        secure=config.app.environment not in ("development", "test"))


def clear_cookie(response: web.StreamResponse) -> None:
    """Tell the browser to forget the session cookie."""
    response.del_cookie(COOKIE_NAME, path=COOKIE_PATH)
