"""Typed keys for what the application and each request store (``app[SERVICES]``, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from propmubi.config import Config
    from propmubi.pluginset import PluginSet
    from propmubi.services import Services
    from propmubi.types import ConsolePage, ConsoleWidget, Principal

__all__ = ["AUTH_ERROR", "CONFIG", "CONSOLE_PAGES", "CONSOLE_USER",
           "CONSOLE_WIDGETS", "OPENAPI", "PLUGINS",
           "PRINCIPAL", "REQUEST_ID", "SERVICES", "SUBJECT"]

CONFIG: web.AppKey[Config] = web.AppKey("propmubi_config")
PLUGINS: web.AppKey[PluginSet] = web.AppKey("propmubi_plugins")
SERVICES: web.AppKey[Services] = web.AppKey("propmubi_services")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("propmubi_openapi")
#: Every enabled plugin's console pages, in plugin order (the console builds its menu from them).
CONSOLE_PAGES: web.AppKey[list[ConsolePage]] = web.AppKey("propmubi_console_pages")
#: Every enabled plugin's dashboard cards, by ``order``.
CONSOLE_WIDGETS: web.AppKey[list[ConsoleWidget]] = web.AppKey("propmubi_console_widgets")

#: This request's id (from ``X-Request-ID`` when valid, else generated).
REQUEST_ID: web.RequestKey[str] = web.RequestKey("propmubi_request_id")
#: The authenticated caller (a user id), set by an authentication middleware; per-subject rate
#: limits count against it.
SUBJECT: web.RequestKey[str] = web.RequestKey("propmubi_subject")
#: The authenticated caller (subject and roles), set by an authentication middleware; routes
#: declared with ``roles=`` check it (:mod:`propmubi.web.auth`).
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("propmubi_principal")
#: Why the credentials the caller presented were refused (expired, bad signature, ...), set by
#: an authentication middleware instead of PRINCIPAL; it becomes the 401's error_description.
AUTH_ERROR: web.RequestKey[str] = web.RequestKey("propmubi_auth_error")
#: The signed-in staff member, set by the console session middleware: a mapping with at least
#: ``roles`` (a collection of role names).
CONSOLE_USER: web.RequestKey[dict[str, Any]] = web.RequestKey("propmubi_console_user")


#: Where the staff console lives.
CONSOLE_PREFIX = "/console"


def is_console_path(path: str) -> bool:
    """Whether ``path`` is the console or below it (``/consolefoo`` is not)."""
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")
