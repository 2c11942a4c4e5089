"""The catalogue's opaque page cursors: a JSON list, base64url without padding.

Callers decide what the list holds and check it on the way back; this module only packs and
unpacks, raising ValueError for anything that is not a cursor.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson


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
