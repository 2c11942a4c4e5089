"""Every Redis key and stream name, in one place.

All names start with the configured ``redis.key_prefix`` (``propmubi:`` by default), so one Redis
can serve several deployments, and each test gets its own prefix.
"""

from __future__ import annotations

__all__ = ["Keys"]


class Keys:
    """Builds Redis key names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def rate_limit(self, scope: str, ident: str, window: int) -> str:
        """Counter of one fixed rate-limit window; expires with the window.

        :param scope: the route's rate-limit scope (its name, or ``api`` for the default limit).
        :param ident: ``ip:<address>`` or ``sub:<subject>``.
        :param window: the window's start, in whole seconds since the epoch.
        """
        return f"{self.prefix}rl:{scope}:{ident}:{window}"

    def job_lease(self, job: str) -> str:
        """Lease held by the scheduler running ``job``; a crashed holder's lease expires."""
        return f"{self.prefix}sched:lease:{job}"

    def job_next_run(self, job: str) -> str:
        """When ``job`` is next due (epoch seconds), shared by every scheduler."""
        return f"{self.prefix}sched:next:{job}"

    def event_stream(self, plugin: str) -> str:
        """The stream a plugin's events are published to."""
        return f"{self.prefix}events:{plugin}"

    def dead_letters(self, group: str) -> str:
        """Dead-letter stream of one consumer group."""
        return f"{self.prefix}events:dead:{group}"

    def replay_stream(self, group: str) -> str:
        """Stream that re-feeds one consumer group from the event log (``events replay``)."""
        return f"{self.prefix}events:replay:{group}"

    def handler_errors(self, group: str) -> str:
        """Hash: stream entry id -> the last error of a failing delivery (for dead letters)."""
        return f"{self.prefix}events:errors:{group}"

    def console_session(self, digest: str) -> str:
        """A console session, by the SHA-256 of its cookie value (so a copy of Redis holds no
        usable cookie); expires after the idle timeout unless touched."""
        return f"{self.prefix}console:session:{digest}"

    def console_failures(self, scope: str, ident: str) -> str:
        """Counter of failed console sign-ins for ``email:<address>`` or ``ip:<address>``."""
        return f"{self.prefix}console:failures:{scope}:{ident}"

    def console_lock(self, scope: str, ident: str) -> str:
        """Present while sign-ins for ``scope``/``ident`` are locked out; expires with the lock."""
        return f"{self.prefix}console:lock:{scope}:{ident}"

    def plugin(self, plugin: str, *parts: str) -> str:
        """A key owned by a plugin: ``<prefix>p:<plugin>:<parts...>``."""
        return ":".join([f"{self.prefix}p", plugin, *parts])

    def pattern(self) -> str:
        """A SCAN pattern matching every key under this prefix."""
        return f"{self.prefix}*"
