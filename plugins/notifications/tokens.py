"""Unsubscribe links: a token naming a user and a category, signed with HMAC-SHA256.

``<user id (32 hex)>.<category>.<signature (base64url, 22 characters: 128 bits)>``. Anyone
holding the link may unsubscribe that user from that category and nothing else; the token
does not expire (RFC 8058 links must keep working), and changing
``plugins.notifications.unsubscribe_secret`` invalidates every link sent before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid

__all__ = ["sign", "verify"]

_SHAPE = re.compile(r"^([0-9a-f]{32})\.([a-z][a-z0-9_]{0,31})\.([A-Za-z0-9_-]{22})$")


def _mac(key: bytes, user_id: uuid.UUID, category: str) -> str:
    digest = hmac.new(key, f"unsubscribe:{user_id.hex}:{category}".encode(),
                      hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(key: bytes, user_id: uuid.UUID, category: str) -> str:
    """The token of ``user_id`` leaving ``category``."""
    return f"{user_id.hex}.{category}.{_mac(key, user_id, category)}"


def verify(key: bytes, token: str) -> tuple[uuid.UUID, str] | None:
    """The user and category of a genuine token; None for anything else."""
    match = _SHAPE.match(token)
    if match is None:
        return None
    user_id, category = uuid.UUID(match.group(1)), match.group(2)
    if not hmac.compare_digest(match.group(3), _mac(key, user_id, category)):
        return None
    return user_id, category
