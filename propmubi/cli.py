"""The ``propmubi`` command: one executable, several roles and tools.

Log records of the servers (``serve``, ``worker``, ``scheduler``, ``dev``) go to stdout, which
journald reads; every other command logs to stderr, so that its stdout carries only its output
(``propmubi events catalog | jq``).

A command that needs ``database.url`` / ``redis.url`` while they are not configured uses the
servers of the ``propmubi dev`` (``make dev``) running on the same ``app.var_dir``, saying so
in one stderr line (see :mod:`propmubi.dev`); without one, it exits 2 naming the missing key.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from propmubi import __version__, migrate
from propmubi.config import Config, ConfigError, load_config
from propmubi.observability import configure_logging
from propmubi.plugins import PluginSet, load_plugins
from propmubi.redaction import redacted

__all__ = ["main"]

EXIT_CONFIG = 2
EXIT_SCHEMA = 3
#: Long-running roles: they log to stdout (journald); every other command logs to stderr.
SERVERS = ("serve", "worker", "scheduler", "dev")
BOTH_URLS = ("database.url", "redis.url")


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:  # uvloop is optional off Linux/macOS
        return asyncio.run(coro)
    return uvloop.run(coro)


def _parser(plugin_commands: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="propmubi", description="Propmubi: one executable, several roles and tools.")
    parser.add_argument("--config", "-c", help="TOML file (default: $PROPMUBI_CONFIG, then "
                        "./propmubi.toml when present)")
    parser.add_argument("--version", action="version", version=f"propmubi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the web server (API, console, health, metrics)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--unix-socket", help="listen on a unix socket instead of TCP")
    serve.add_argument("--reuse-port", action="store_true",
                       help="let several processes share the port (SO_REUSEPORT)")

    sched = sub.add_parser("scheduler", help="run periodic jobs (one run per tick across all VMs)")
    sched.add_argument("--metrics-port", type=int, default=None,
                       help="serve /metrics and /health on 127.0.0.1:PORT")

    work = sub.add_parser("worker", help="run the outbox relay and every plugin's event consumers")
    work.add_argument("--metrics-port", type=int, default=None,
                      help="serve /metrics and /health on 127.0.0.1:PORT")

    mig = sub.add_parser("migrate", help="apply or roll back schema migrations")
    mig_sub = mig.add_subparsers(dest="action", required=True, metavar="ACTION")
    mig_sub.add_parser("up", help="apply every pending migration")
    mig_sub.add_parser("status", help="list applied, pending and changed migrations")
    down = mig_sub.add_parser("down", help="roll one plugin back with its .down.sql files")
    down.add_argument("--to", type=int, required=True, metavar="VERSION",
                      help="the version to roll back to (0 removes every migration)")
    down.add_argument("--plugin", default=None,
                      help="the plugin to roll back (required when several have migrations)")

    dev = sub.add_parser("dev", help="run everything locally on embedded PostgreSQL and Redis")
    dev.add_argument("--port", type=int, default=None, help="web port (default: http.port)")
    dev.add_argument("--no-seed", action="store_true", help="skip demo data")

    seed = sub.add_parser("seed", help="create demo data (idempotent)")
    seed.add_argument("--scale", type=float, default=1.0)

    sub.add_parser("check", help="validate the configuration and plugins without starting")
    sub.add_parser("plugins", help="list installed plugins and whether they run")
    sub.add_parser("config", help="print the effective configuration, secrets hidden")
    for name, (_, command) in (plugin_commands or {}).items():
        if name in sub.choices:
            raise ConfigError(f"a plugin's command {name!r} clashes with an existing command")
        command.configure(sub.add_parser(name, help=command.help))
    return parser


def _plugin_commands(plugins: PluginSet) -> dict[str, tuple[str, Any]]:
    """Every plugin's sub-commands: name -> (the plugin's name, the command)."""
    found: dict[str, tuple[str, Any]] = {}
    for plugin, commands in plugins.call("propmubi_cli_commands"):
        for command in commands:
            if command.name in found:
                raise ConfigError(f"plugins {found[command.name][0]!r} and {plugin.name!r} "
                                  f"both add the command {command.name!r}")
            found[command.name] = (plugin.name, command)
    return found


def _lists_event_catalog(owner: str, args: argparse.Namespace) -> bool:
    """``propmubi events catalog``: it lists what the plugins declare, so it opens nothing."""
    return (owner == "bus" and args.command == "events"
            and getattr(args, "events_action", None) == "catalog")


def _without_services(owner: str, command: Any, args: argparse.Namespace) -> bool:
    return not command.needs_services or _lists_event_catalog(owner, args)


def cmd_plugin(config: Config, plugins: PluginSet, owner: str, command: Any,
               args: argparse.Namespace) -> int:
    """Run a plugin's command with the plugin's started context (None for a command declared
    with ``needs_services=False``: no database or Redis is opened)."""
    if _lists_event_catalog(owner, args):
        from propmubi.events.catalog import EventCatalog
        from propmubi.events.plugin import print_catalog

        print_catalog(EventCatalog.from_plugins(plugins))
        return 0
    if not command.needs_services:
        return int(_run(command.run(args, None)) or 0)
    _need(config, *BOTH_URLS)
    from propmubi.lifecycle import open_services

    async def run() -> int:
        async with open_services(config, plugins) as services:
            code: int = await command.run(args, services.contexts[owner])
            return code

    return int(_run(run()) or 0)


def _needed_urls(args: argparse.Namespace, commands: dict[str, Any]) -> tuple[str, ...]:
    """The URLs a command cannot run without."""
    if args.command in ("serve", "worker", "scheduler", "seed"):
        return BOTH_URLS
    if args.command == "migrate":
        return ("database.url",)
    if args.command in commands:
        owner, command = commands[args.command]
        if not _without_services(owner, command, args):
            return BOTH_URLS
    return ()


def _use_dev_servers(config: Config, plugins: PluginSet, config_path: str | None
                     ) -> tuple[Config, PluginSet, str]:
    """Fill ``database.url`` / ``redis.url``, where not configured, from the ``propmubi dev``
    running on ``app.var_dir``; also its generated secrets unless CREDENTIALS_DIRECTORY is
    set. Returns the config and plugins to use, and a note for the "required" error ("" or
    why a dev file there was not used)."""
    missing = [s for s in ("database", "redis") if not getattr(config, s).url]
    if not missing or config.app.environment == "production":
        return config, plugins, ""
    from propmubi.dev import DEV_FILE, running_dev_servers

    where = config.app.var_dir.rstrip("/") + "/"
    servers, stale = running_dev_servers(config.app.var_dir)
    if servers is None:
        return config, plugins, f"; not using {where}{DEV_FILE}: {stale}" if stale else ""
    if servers.credentials and not os.environ.get("CREDENTIALS_DIRECTORY"):
        # The secrets dev generated (signing keys, ...), as its own children read them.
        config = load_config(config_path, {**os.environ,
                                           "CREDENTIALS_DIRECTORY": servers.credentials})
        plugins = load_plugins(config)
    urls = {"database": servers.database_url, "redis": servers.redis_url}
    use = {s: {"url": urls[s]} for s in missing if urls[s] and not getattr(config, s).url}
    if not use:
        return config, plugins, ""
    which = "servers" if len(use) == 2 else {"database": "PostgreSQL", "redis": "Redis"}[
        next(iter(use))]
    print(f"propmubi: using the dev {which} of {where} (started by propmubi dev)",
          file=sys.stderr, flush=True)
    return config.evolve(**use), plugins, ""


def _with_overrides(config: Config, args: argparse.Namespace) -> Config:
    if args.command == "dev":  # `make dev PORT=...`
        http: dict[str, Any] = {} if args.port is None else {"port": args.port}
    elif args.command == "serve":
        http = {k: v for k, v in {"host": args.host, "port": args.port,
                                  "unix_socket": args.unix_socket}.items() if v is not None}
        if args.reuse_port:
            http["reuse_port"] = True
    else:
        return config
    try:
        return config.evolve(http=http) if http else config
    except ValueError as exc:  # the section's validators, e.g. --port 70000
        message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        raise ConfigError(f"{args.command} options: {message}") from None


def _need(config: Config, *keys: str, note: str = "") -> None:
    for key in keys:
        section, name = key.split(".")
        if not getattr(getattr(config, section), name):
            raise ConfigError(f"{key}: required (set it in the config file or "
                              f"PROPMUBI_{section.upper()}__{name.upper()}), or keep `make dev` "
                              "(propmubi dev) running: commands run with its app.var_dir then "
                              f"use its embedded servers{note}")


def cmd_check(config: Config, plugins: PluginSet) -> int:
    from propmubi.roles import check_listener
    from propmubi.storage import create_storage

    check_listener(config)  # what `propmubi web` would refuse, refused here first
    create_storage(config, plugins)  # storage.backend names an offered backend; builds only
    print(f"configuration OK ({config.source or 'defaults and environment'}); "
          f"plugins: {', '.join(p.name for p in plugins)}")
    return 0


def cmd_plugins(config: Config, plugins: PluginSet) -> int:
    for plugin in plugins:
        requires = f" requires {', '.join(plugin.info.requires)}" if plugin.info.requires else ""
        print(f"enabled   {plugin.name:<16} {plugin.info.version:<10} {plugin.source}{requires}")
    for name, source, why in plugins.skipped:
        print(f"disabled  {name:<16} {'':<10} {source} ({why})")
    return 0


def cmd_config(config: Config, plugins: PluginSet) -> int:
    settings = {p.name: p.settings for p in plugins if p.settings is not None}
    print(json.dumps(redacted(config, settings), indent=2, sort_keys=True, default=str))
    return 0


def cmd_migrate(config: Config, plugins: PluginSet, args: argparse.Namespace) -> int:
    _need(config, "database.url")
    url = config.database.url
    if args.action == "up":
        applied = _run(migrate.up(url, plugins))
        for m in applied:
            print(f"applied  {m.label}")
        print(f"{len(applied)} migration(s) applied; schema is current")
        return 0
    if args.action == "status":
        state = _run(migrate.status(url, plugins))
        for row in state.applied:
            print(f"applied  {row['plugin']}/{row['version']:04d}_{row['name']}.sql  "
                  f"{row['applied_at']:%Y-%m-%d %H:%M:%S}")
        for m in state.pending:
            print(f"pending  {m.label}")
        for m in state.changed:
            print(f"CHANGED  {m.label}  (differs from the applied file)")
        return 0 if state.current else 1
    owners = sorted({m.plugin for m in migrate.migrations_for(plugins)})
    plugin = args.plugin
    if plugin is None:
        if len(owners) != 1:
            raise ConfigError(f"migrate down: --plugin is required ({', '.join(owners)} "
                              "have migrations)")
        plugin = owners[0]
    undone = _run(migrate.down(url, plugins, plugin, args.to))
    for m in undone:
        print(f"rolled back  {m.label}")
    print(f"{plugin} is at version {args.to}")
    return 0


def cmd_seed(config: Config, plugins: PluginSet, scale: float) -> int:
    _need(config, *BOTH_URLS)
    from propmubi.lifecycle import open_services
    from propmubi.plugins import resolve

    async def seed() -> None:
        async with open_services(config, plugins) as services:
            for plugin, result in plugins.call("propmubi_seed", contexts=services.contexts,
                                               scale=scale):
                await resolve(result)
                print(f"seeded {plugin.name}")

    _run(seed())
    return 0


COMMANDS: dict[str, Callable[[Config, PluginSet], int]] = {
    "check": cmd_check, "plugins": cmd_plugins, "config": cmd_config,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``propmubi`` executable; returns the exit code."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", "-c")
    early, _ = pre.parse_known_args(argv)
    config: Config | None = None
    plugins: PluginSet | None = None
    commands: dict[str, Any] = {}
    problem: ConfigError | None = None
    try:
        config = load_config(early.config)
        plugins = load_plugins(config)
        commands = _plugin_commands(plugins)
        parser = _parser(commands)
    except ConfigError as exc:
        # Reported after parsing, so that --help and --version still work.
        problem, commands, parser = exc, {}, _parser()
    try:
        args = parser.parse_args(argv)
        if problem is not None:
            raise problem
        assert config is not None and plugins is not None
        needed = _needed_urls(args, commands)
        if needed or args.command == "config":
            config, plugins, note = _use_dev_servers(config, plugins, early.config)
            _need(config, *needed, note=note)
        config = _with_overrides(config, args)
        configure_logging(config.logging.level, config.logging.json,
                          stream=None if args.command in SERVERS else sys.stderr)
        if args.command == "dev":
            from propmubi.dev import run_dev

            return run_dev(config, args.config, port=args.port, seed=not args.no_seed)
        if args.command in commands:
            owner, command = commands[args.command]
            return cmd_plugin(config, plugins, owner, command, args)
        if args.command in COMMANDS:
            return COMMANDS[args.command](config, plugins)
        if args.command == "migrate":
            return cmd_migrate(config, plugins, args)
        if args.command == "seed":
            return cmd_seed(config, plugins, args.scale)
        from propmubi import roles

        _need(config, *BOTH_URLS)
        if args.command == "serve":
            role = roles.run_web
        elif args.command == "worker":
            role = functools.partial(roles.run_worker, metrics_port=args.metrics_port)
        else:
            role = functools.partial(roles.run_scheduler, metrics_port=args.metrics_port)
        try:
            _run(role(config, plugins))
        except roles.SchemaBehind as exc:
            print(f"propmubi {args.command}: {exc}", file=sys.stderr)
            return EXIT_SCHEMA
        return 0
    except migrate.MigrationError as exc:
        print(f"propmubi: migration error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_SCHEMA
    except ConfigError as exc:
        # One line, so that journald and scripts see the whole reason at once.
        print(f"propmubi: configuration error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
