"""Identifiers: UUIDv7 (RFC 9562), time-ordered so that B-tree inserts stay at the right edge."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterable

__all__ = ["uuid7", "valid_uuids"]

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """A new UUIDv7: 48-bit Unix milliseconds, then a 12-bit counter and 62 random bits.

    The counter (RFC 9562 §6.2 method 1) keeps ids made in the same millisecond by this process
    in creation order.
    """
    global _last_ms, _counter
    with _lock:
        now = time.time_ns() // 1_000_000
        if now > _last_ms:
            _last_ms = now
            _counter = int.from_bytes(os.urandom(2), "big") & 0x1FF  # leave headroom to count
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
        ms, counter = _last_ms, _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    return uuid.UUID(int=value)


def valid_uuids(texts: Iterable[str]) -> list[uuid.UUID]:
    """The texts that are UUIDs, parsed (others skipped): ids from references a caller
    cannot vouch for, before they reach a ``uuid[]`` parameter."""
    out = []
    for text in texts:
        try:
            out.append(uuid.UUID(text))
        except ValueError:
            continue
    return out
