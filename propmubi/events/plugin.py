"""The event bus as a core plugin: its jobs (trimming) and ``propmubi events ...``."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any, cast

import attrs
import orjson

from propmubi import __version__, hookimpl
from propmubi.context import PluginContext
from propmubi.events.bus import EventBus
from propmubi.events.catalog import EventCatalog
from propmubi.events.consumer import Group
from propmubi.events.envelope import Envelope
from propmubi.events.ops import (
    drop_dead,
    group_stats,
    list_dead,
    replay,
    retry_dead,
    trim_log,
    trim_streams,
)
from propmubi.redis import StreamEntries, StreamRead
from propmubi.services import Services
from propmubi.types import CliCommand, Job, PluginInfo

__all__ = ["print_catalog"]


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    return PluginInfo(name="bus", version=__version__,
                      description="event bus: outbox relay, consumers, dead letters, replay")


def _streams(services: Services) -> list[str]:
    bus = EventBus(services)
    publishers = {info.publisher for info in bus.catalog.types.values()}
    streams = {services.keys.event_stream(p) for p in publishers}
    streams |= {s for g in bus.groups for s in g.streams}
    return sorted(streams)


async def _trim_streams(ctx: PluginContext[None, None]) -> None:
    await trim_streams(ctx.services, _streams(ctx.services))


async def _trim_log(ctx: PluginContext[None, None]) -> None:
    await trim_log(ctx.services)


@hookimpl
def propmubi_jobs() -> list[Job]:
    return [Job(name="trim_streams", run=_trim_streams, every=60.0),
            Job(name="trim_log", run=_trim_log, every=3600.0)]


# -- propmubi events ... ----------------------------------------------------------------------

def _configure_events(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="events_action", required=True, metavar="ACTION")
    sub.add_parser("catalog", help="every registered event type with its fields")
    sub.add_parser("stats", help="per consumer group: pending, lag, dead letters")
    tail = sub.add_parser("tail", help="print events as they reach the streams")
    tail.add_argument("--last", type=int, default=10, help="show this many past events first")
    tail.add_argument("--no-follow", action="store_true", help="exit after the past events")
    dlq = sub.add_parser("dlq", help="dead letters: list, show, retry, drop")
    dlq.add_argument("dlq_action", choices=["list", "show", "retry", "drop"])
    dlq.add_argument("dead_id", nargs="?", help="the dead letter's id (from `list`)")
    dlq.add_argument("--consumer", help="the consumer group (plugin); default: all")
    rep = sub.add_parser("replay", help="re-feed a consumer group from the event log")
    rep.add_argument("--consumer", required=True, help="the consumer group (plugin name)")
    rep.add_argument("--since", required=True, help="an ISO time or an event id")


def _pick(bus: EventBus, name: str | None) -> list[Group]:
    if name is None:
        return bus.groups
    found = [g for g in bus.groups if g.name == name]
    if not found:
        known = ", ".join(g.name for g in bus.groups) or "none"
        raise SystemExit(f"propmubi events: no consumer group {name!r} (groups: {known})")
    return found


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def print_catalog(catalog: EventCatalog) -> None:
    """``propmubi events catalog``: every registered type as JSON on stdout. Needs no database
    or Redis, so the CLI runs it before opening any (and without ``propmubi dev``)."""
    _print([{"type": i.type, "version": i.version, "publisher": i.publisher,
             "fields": i.fields, "doc": i.doc} for i in catalog.types.values()])


async def _run_events(args: argparse.Namespace, ctx: PluginContext[None, None]) -> int:
    services = ctx.services
    bus = EventBus(services)
    action = args.events_action
    if action == "catalog":
        print_catalog(bus.catalog)
    elif action == "stats":
        _print(await group_stats(services, bus.groups))
    elif action == "tail":
        await _tail(services, args)
    elif action == "replay":
        group = _pick(bus, args.consumer)[0]
        await bus.consumer.ensure_groups()
        try:
            queued = await replay(services, group, args.since)
        except ValueError as exc:
            raise SystemExit(f"propmubi events replay: {exc}") from None
        print(f"queued {queued} event(s) for {group.name}; running workers apply what is "
              "missing")
    else:
        return await _dlq(services, bus, args)
    return 0


async def _dlq(services: Services, bus: EventBus, args: argparse.Namespace) -> int:
    groups = _pick(bus, args.consumer)
    if args.dlq_action == "list":
        letters = await list_dead(services, groups)
        if not letters:
            print("no dead letters")
        for letter in letters:
            print(f"{letter.group}  {letter.dead_id}  {letter.fields.get('type')}  "
                  f"event={letter.fields.get('id')}  deliveries={letter.deliveries}  "
                  f"error={letter.error}")
        return 0
    if not args.dead_id:
        raise SystemExit(f"propmubi events dlq {args.dlq_action}: give a dead letter id")
    everything = {(d.group, d.dead_id): d for d in await list_dead(services, groups, 10_000)}
    matches = [d for (_, i), d in everything.items() if i == args.dead_id]
    if not matches:
        raise SystemExit(f"propmubi events dlq: no dead letter {args.dead_id}")
    letter = matches[0]
    group = _pick(bus, letter.group)[0]
    if args.dlq_action == "show":
        _print(attrs.asdict(letter))
    elif args.dlq_action == "drop":
        await drop_dead(services, letter.group, letter.dead_id)
        print(f"dropped {letter.dead_id} from {letter.group}")
    else:
        try:
            await retry_dead(services, bus.consumer, group, letter.dead_id)
        except Exception as exc:
            print(f"retry failed again: {type(exc).__name__}: {exc}; the letter stays")
            return 1
        print(f"retried {letter.dead_id}: handled by {group.name}")
    return 0


async def _tail(services: Services, args: argparse.Namespace) -> None:
    redis = services.redis
    streams = [s for s in _streams(services) if ":replay:" not in s]
    positions: dict[str, str] = {}
    for stream in streams:
        past = cast(StreamEntries, await redis.xrevrange(stream, count=args.last))
        for entry_id, fields in reversed(past):
            print(orjson.dumps(attrs.asdict(Envelope.from_fields(fields)),
                               default=str).decode(), flush=True)
            positions[stream] = entry_id
        positions.setdefault(stream, "$")
    while not args.no_follow:
        # redis-py types the mapping invariantly over every key and id type it accepts.
        streams_at: Any = positions
        response = cast(StreamRead | None,
                        await redis.xread(streams_at, block=1000, count=100))
        for stream, items in response or []:
            for entry_id, fields in items:
                print(orjson.dumps(attrs.asdict(Envelope.from_fields(fields)),
                                   default=str).decode(), flush=True)
                positions[stream] = entry_id
        await asyncio.sleep(0)


@hookimpl
def propmubi_cli_commands() -> list[CliCommand]:
    return [
        CliCommand(name="events", help="inspect and operate the event bus",
                   configure=_configure_events, run=_run_events),
    ]
