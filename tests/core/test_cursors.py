"""The page-cursor codec: what goes in comes back, and anything else is a ValueError."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from propmubi import cursors


@given(st.datetimes(timezones=st.timezones()), st.uuids())
def test_a_position_comes_back_as_the_same_instant_in_utc(at, ident):
    try:
        at.astimezone(dt.UTC)
    except OverflowError:  # no such instant in UTC: the codec must refuse it, not crash
        with pytest.raises(ValueError):
            cursors.unpack_position(cursors.pack_position(at, ident))
        return
    back, same = cursors.unpack_position(cursors.pack_position(at, ident))
    # (compared in UTC: an aware datetime in a fold or gap of its zone never equals one in
    # another zone, PEP 495)
    assert back == at.astimezone(dt.UTC) and same == ident
    assert back.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("parts", [
    ["2026-01-01T00:00:00", "0190a8b4-0000-7000-8000-000000000000"],  # no zone
    ["0001-01-01T00:00:00+23:59", "0190a8b4-0000-7000-8000-000000000000"],  # before year 1
    ["2026-01-01T00:00:00+00:00", "not-a-uuid"],
    ["2026-01-01T00:00:00+00:00"], [1, 2], [],
])
def test_anything_else_is_a_value_error(parts):
    with pytest.raises(ValueError):
        cursors.unpack_position(cursors.pack(parts))


@given(st.text())
def test_no_text_raises_anything_but_value_error(text):
    with contextlib.suppress(ValueError):
        cursors.unpack(text)
