"""Event types: frozen attrs classes with a dotted ``type``, a schema version and an aggregate.

    @event("crm.lead_assigned", version=1, aggregate="lead_id")
    @attrs.frozen
    class LeadAssigned:
        \"\"\"A lead was given to an agent.\"\"\"
        lead_id: uuid.UUID
        agent_id: uuid.UUID

A plugin returns its classes from ``propmubi_event_types``; the catalog refuses a type whose
prefix is not the plugin's name, and publishing a type no enabled plugin registered fails.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

import attrs

from propmubi.pluginset import PluginSet

__all__ = ["EventCatalog", "EventTypeError", "event"]

T = TypeVar("T")
_TYPE = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)$")


class EventTypeError(ValueError):
    """An event class is malformed, unregistered, or registered twice."""


def event(type_name: str, *, version: int = 1, aggregate: str) -> Callable[[type[T]], type[T]]:
    """Mark an attrs class as an event type.

    :param type_name: ``<plugin>.<past_tense>``, e.g. ``"crm.lead_assigned"``.
    :param version: the payload schema version; bump it when fields change meaning.
    :param aggregate: the field holding the id of the aggregate the event is about; the
        aggregate's events are delivered in commit order, each with its sequence number.
    """
    if not _TYPE.match(type_name):
        raise EventTypeError(f"event type {type_name!r} is not '<plugin>.<past_tense>'")

    def decorate(cls: type[T]) -> type[T]:
        if not attrs.has(cls):
            raise EventTypeError(f"{cls.__name__}: an event must be an attrs class")
        attrs.resolve_types(cls)
        if aggregate not in attrs.fields_dict(cls):
            raise EventTypeError(f"{type_name}: aggregate field {aggregate!r} does not exist")
        cls.event_type = type_name  # type: ignore[attr-defined]
        cls.event_version = version  # type: ignore[attr-defined]
        cls.event_aggregate = aggregate  # type: ignore[attr-defined]
        return cast("type[T]", cls)  # attrs.has() above narrowed it to type[AttrsInstance]

    return decorate


@attrs.frozen
class EventInfo:
    """One registered type: its class, the plugin that publishes it, and its fields."""

    type: str
    version: int
    cls: builtins.type[Any]  # plain `type` would name the field above
    publisher: str
    doc: str
    fields: dict[str, str]


class EventCatalog:
    """Every event type registered by the enabled plugins."""

    def __init__(self, infos: dict[str, EventInfo]) -> None:
        self.types = infos

    @classmethod
    def from_plugins(cls, plugins: PluginSet) -> EventCatalog:
        """Collect ``propmubi_event_types`` from every enabled plugin and validate them."""
        infos: dict[str, EventInfo] = {}
        for plugin, classes in plugins.call("propmubi_event_types"):
            for klass in classes:
                type_name = getattr(klass, "event_type", None)
                if type_name is None:
                    raise EventTypeError(f"plugin {plugin.name}: {klass!r} lacks @event(...)")
                prefix = type_name.split(".")[0]
                if prefix != plugin.name:
                    raise EventTypeError(f"plugin {plugin.name} registers {type_name}; its "
                                         f"events must be named {plugin.name}.<past_tense>")
                if type_name in infos:
                    raise EventTypeError(f"event type {type_name} is registered twice")
                infos[type_name] = EventInfo(
                    type=type_name, version=klass.event_version, cls=klass,
                    publisher=plugin.name, doc=(klass.__doc__ or "").strip(),
                    fields={f.name: getattr(f.type, "__name__", str(f.type))
                            for f in attrs.fields(klass)})
        return cls(infos)

    def info(self, type_name: str) -> EventInfo:
        """The registered type; :class:`EventTypeError` when no enabled plugin registered it."""
        try:
            return self.types[type_name]
        except KeyError:
            raise EventTypeError(f"event type {type_name!r} is not registered by any enabled "
                                 "plugin (propmubi_event_types)") from None

    def of(self, obj: Any) -> EventInfo:
        """The registered type of an event instance (checking it is the registered class)."""
        info = self.info(getattr(type(obj), "event_type", type(obj).__name__))
        if type(obj) is not info.cls:
            raise EventTypeError(f"{type(obj).__name__} is not the registered class of "
                                 f"{info.type}")
        return info

    def publishers(self, type_names: list[str]) -> set[str]:
        """The plugins whose streams carry these types."""
        return {self.info(t).publisher for t in type_names}
