"""The attrs classes of the plugin's API and console: validated inputs, queries, answers.

An input class checks every field where it enters (a route's body or query, a console form
read with ``read_form``, a CLI command), so the service never sees a bad value; the messages
are written for whoever typed the value, and every bad field is reported at once. Output
classes are what the API returns (and what the OpenAPI document describes).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import attrs
from attrs import validators as v

#: Longest title and note.
TITLE_MAX = 200
NOTE_MAX = 2000


def _title(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip():
        raise ValueError("Give the item a title.")
    if len(value) > TITLE_MAX:
        raise ValueError(f"At most {TITLE_MAX} characters (got {len(value)}).")


def _note(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if len(value) > NOTE_MAX:
        raise ValueError(f"At most {NOTE_MAX} characters (got {len(value)}).")


@attrs.frozen
class ItemIn:
    """A new item: the POST body, and the console's create form."""

    # An empty text box is an absent field: the default lets the validator say what is wrong.
    title: str = attrs.field(default="", validator=_title,
                             metadata={"description": "What the item is called."})
    note: str = attrs.field(default="", validator=_note)


@attrs.frozen
class ItemOut:
    """An item as the API shows it."""

    id: uuid.UUID
    title: str
    note: str
    #: Who created it: ``user:<id>``, ``staff:<id>`` or ``system:<part>``.
    created_by: str
    created_at: dt.datetime


@attrs.frozen
class ItemPage:
    """A page of items, newest first; ``next_cursor`` asks for the next one."""

    items: list[ItemOut]
    next_cursor: str | None


@attrs.frozen
class ListQuery:
    """Keyset pagination: pass a page's ``next_cursor`` as ``cursor`` for the next page."""

    limit: int | None = attrs.field(default=None, validator=v.optional([v.ge(1), v.le(100)]))
    cursor: str | None = attrs.field(default=None, validator=v.optional(v.max_len(200)))


@attrs.frozen
class ItemId:
    """The ``{item_id}`` of a path."""

    item_id: uuid.UUID


@attrs.frozen
class ActivityLine:
    """One line of the activity log that the event handler keeps."""

    item_id: uuid.UUID
    line: str
    recorded_at: dt.datetime
