"""The worker side assembled: relay + consumers, the Redis guard, and a synchronous drain."""

from __future__ import annotations

import asyncio
import logging

from propmubi.events.consumer import Consumer, collect_groups
from propmubi.events.relay import Relay
from propmubi.services import Services

__all__ = ["BusGuardError", "EventBus", "check_eviction_policy"]

log = logging.getLogger(__name__)


class BusGuardError(RuntimeError):
    """Redis is configured so that stream entries could be lost."""


async def check_eviction_policy(services: Services) -> None:
    """Refuse (or warn, per ``events.eviction_policy_check``) unless Redis never evicts keys:
    an evicted stream loses events that no one has processed yet."""
    mode = services.config.events.eviction_policy_check
    try:
        policy = (await services.redis.config_get("maxmemory-policy")).get("maxmemory-policy")
    except Exception as exc:  # managed Redis services often disable CONFIG
        log.warning("cannot read Redis maxmemory-policy (%s); make sure it is noeviction", exc)
        return
    if policy == "noeviction":
        return
    message = (f"Redis maxmemory-policy is {policy!r}: stream entries may be evicted and "
               "events lost; set it to noeviction")
    if mode == "refuse":
        raise BusGuardError(message + " (or events.eviction_policy_check = \"warn\")")
    log.warning(message)


class EventBus:
    """The relay and the consumer of one worker process."""

    def __init__(self, services: Services, consumer_name: str | None = None) -> None:
        self.services = services
        self.catalog = services.events
        self.groups = collect_groups(services, self.catalog)
        self.relay = Relay(services)
        self.consumer = Consumer(services, self.catalog, self.groups, consumer_name)

    async def run(self) -> None:
        """Relay and consume until :meth:`stop`."""
        await asyncio.gather(self.relay.run(), self.consumer.run())

    def stop(self) -> None:
        """Stop both; in-flight batches finish first."""
        self.relay.stop()
        self.consumer.stop()

    async def drain(self, max_rounds: int = 100) -> None:
        """Publish and handle everything now, without waiting (for tests).

        Relays every committed outbox row, then handles every new entry of every group, until a
        round does nothing. Failed deliveries stay pending (retries follow their backoff).
        """
        await self.consumer.ensure_groups()
        for _ in range(max_rounds):
            moved = 0
            while (n := await self.relay.relay_once()) > 0:
                moved += n
            for group in self.groups:
                while (n := await self.consumer.read_once(group, block=False)) > 0:
                    moved += n
            if moved == 0:
                return
        raise RuntimeError(f"events did not settle in {max_rounds} rounds")
