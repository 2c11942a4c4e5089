"""The ``propmubi`` command: one executable, several roles and tools."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
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
    for name, command in (plugin_commands or {}).items():
        if name in sub.choices:
            raise ConfigError(f"a plugin's command {name!r} clashes with an existing command")
        command.configure(sub.add_parser(name, help=command.help))
    return parser


def _plugin_commands(plugins: PluginSet) -> dict[str, Any]:
    found: dict[str, tuple[str, Any]] = {}
    for plugin, commands in plugins.call("propmubi_cli_commands"):
        for command in commands:
            if command.name in found:
                raise ConfigError(f"plugins {found[command.name][0]!r} and {plugin.name!r} "
                                  f"both add the command {command.name!r}")
            found[command.name] = (plugin.name, command)
    return {name: command for name, (_, command) in found.items()}


def cmd_plugin(config: Config, plugins: PluginSet, command: Any, args: argparse.Namespace
               ) -> int:
    _need(config, "database.url", "redis.url")
    from propmubi.context import open_services

    async def run() -> int:
        async with open_services(config, plugins) as services:
            return await command.run(args, services)

    return int(_run(run()) or 0)


def _with_overrides(config: Config, args: argparse.Namespace) -> Config:
    if args.command != "serve":
        return config
    http = {k: v for k, v in {"host": args.host, "port": args.port,
                              "unix_socket": args.unix_socket}.items() if v is not None}
    if args.reuse_port:
        http["reuse_port"] = True
    try:
        return config.evolve(http=http) if http else config
    except ValueError as exc:  # the section's validators, e.g. --port 70000
        message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        raise ConfigError(f"serve options: {message}") from None


def _need(config: Config, *keys: str) -> None:
    for key in keys:
        section, name = key.split(".")
        if not getattr(getattr(config, section), name):
            raise ConfigError(f"{key}: required (set it in the config file or "
                              f"PROPMUBI_{section.upper()}__{name.upper()}); "
                              "`propmubi dev` starts embedded servers instead")


def cmd_check(config: Config, plugins: PluginSet) -> int:
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
    _need(config, "database.url", "redis.url")
    from propmubi.context import open_services
    from propmubi.plugins import resolve

    async def seed() -> None:
        async with open_services(config, plugins) as services:
            for plugin, result in plugins.call("propmubi_seed", services=services, scale=scale):
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
        config = _with_overrides(config, args)
        configure_logging(config.logging.level, config.logging.json)
        if args.command == "dev":
            from propmubi.dev import run_dev

            return run_dev(config, args.config, port=args.port, seed=not args.no_seed)
        if args.command in commands:
            return cmd_plugin(config, plugins, commands[args.command], args)
        if args.command in COMMANDS:
            return COMMANDS[args.command](config, plugins)
        if args.command == "migrate":
            return cmd_migrate(config, plugins, args)
        if args.command == "seed":
            return cmd_seed(config, plugins, args.scale)
        from propmubi import server

        _need(config, "database.url", "redis.url")
        if args.command == "serve":
            role = server.run_web
        else:
            role = functools.partial(server.run_scheduler, metrics_port=args.metrics_port)
        try:
            _run(role(config, plugins))
        except server.SchemaBehind as exc:
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
