"""Names for the ``<kind>:<id>`` references that history rows and events record as the actor.

Console pages show people by name: each plugin offers a resolver for the actor kinds it owns
(:func:`propmubi.hookspecs.propmubi_actor_names`: the console for ``staff``, auth for ``user``),
and :func:`actor_names` asks each kind's resolver once for all the references of a page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiohttp import web

from propmubi.db import Database
from propmubi.web.appkeys import PLUGINS, SERVICES

Resolver = Callable[[Database, list[str]], Awaitable[Mapping[str, str]]]

__all__ = ["actor_names", "fallback_name"]

#: What a reference shows when its kind's resolver does not know it (an erased or deleted
#: account, or a kind no enabled plugin names).
_UNKNOWN = {"user": "unknown user", "staff": "unknown staff member"}


def fallback_name(ref: str) -> str:
    """A reference's name when nobody resolves it: ``system`` parts as they are
    (``system:seed`` -> ``system (seed)``), other kinds as "unknown <kind>"."""
    kind, _, ident = ref.partition(":")
    if kind == "system":
        return "system" if ident in ("", "system") else f"system ({ident})"
    return _UNKNOWN.get(kind, ref)


async def actor_names(app: web.Application, refs: Iterable[str | None]) -> dict[str, str]:
    """A display name for each reference (``staff:<uuid>`` -> "Asha Rao"), one query per kind.

    Every reference given is in the result: unknown ones get :func:`fallback_name`.
    """
    by_kind: dict[str, set[str]] = {}
    for ref in refs:
        if ref:
            kind, _, ident = ref.partition(":")
            by_kind.setdefault(kind, set()).add(ident)
    resolvers: dict[str, Resolver] = {}
    for _plugin, offered in app[PLUGINS].call("propmubi_actor_names"):
        resolvers.update(offered)
    db = app[SERVICES].db
    names: dict[str, str] = {}
    for kind, ids in by_kind.items():
        resolve = resolvers.get(kind)
        known = await resolve(db, sorted(ids)) if resolve is not None else {}
        for ident in ids:
            ref = f"{kind}:{ident}"
            names[ref] = known.get(ident) or fallback_name(ref)
    return names
