"""The one page-cursor codec, for API lists and console pages alike.

A cursor is a JSON list packed as base64url without padding: opaque to clients, and cheap to
check on the way back. Callers decide what the list holds (a keyset position, a fingerprint of
the query) and validate it when it comes back; this module only packs and unpacks.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Any

import orjson

__all__ = ["pack", "pack_position", "unpack", "unpack_position"]


def pack(parts: list[Any]) -> str:
    """An opaque cursor carrying ``parts`` (JSON-serialisable values)."""
    return base64.urlsafe_b64encode(orjson.dumps(parts)).rstrip(b"=").decode()


def unpack(cursor: str) -> list[Any]:
    """The list a cursor carries; ValueError when the text is not a cursor."""
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        raise ValueError("not a cursor") from None
    if not isinstance(parts, list):
        raise ValueError("not a cursor")
    return parts


def pack_position(at: dt.datetime, ident: uuid.UUID) -> str:
    """A keyset position ``(timestamp, id)`` (newest-first lists) as a cursor."""
    return pack([at.isoformat(), str(ident)])


def unpack_position(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """The ``(timestamp, id)`` of :func:`pack_position`; ValueError for anything else.

    The timestamp comes back in UTC: a hand-made cursor may carry any offset Python parses
    (``+23:59``), and PostgreSQL refuses offsets beyond its own range.
    """
    parts = unpack(cursor)
    if len(parts) != 2 or not all(isinstance(p, str) for p in parts):
        raise ValueError("not a position cursor")
    at, ident = dt.datetime.fromisoformat(parts[0]), uuid.UUID(parts[1])
    if at.tzinfo is None:
        raise ValueError("not a position cursor")
    try:
        return at.astimezone(dt.UTC), ident
    except OverflowError:  # an offset that pushes the instant outside Python's years
        raise ValueError("not a position cursor") from None
