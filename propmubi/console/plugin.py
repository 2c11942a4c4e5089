"""The console shell as a core plugin: its pages, its session middleware, ``propmubi staff``."""

from __future__ import annotations

from typing import Any

from propmubi import __version__, hookimpl
from propmubi.config import Config
from propmubi.console import cli, store, views
from propmubi.console.middleware import console_session_middleware
from propmubi.types import CliCommand, ConsolePage, PluginInfo

__all__: list[str] = []


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    return PluginInfo(name="console", version=__version__,
                      description="staff console: sign-in, sessions, CSRF, navigation")


@hookimpl
def propmubi_console_pages() -> list[ConsolePage]:
    return views.pages()


@hookimpl
def propmubi_middlewares(config: Config) -> list[Any]:
    return [console_session_middleware(config)]


@hookimpl
def propmubi_actor_names() -> dict[str, Any]:
    return {"staff": store.names}


@hookimpl
def propmubi_cli_commands() -> list[CliCommand]:
    return [CliCommand(name="staff", help="manage console staff accounts",
                       configure=cli.configure, run=cli.run)]
