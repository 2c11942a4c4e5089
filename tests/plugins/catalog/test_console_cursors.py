"""Every console list answers a mangled page link (``cursor``, ``after``) with 400 and a page
that says the link is broken: never a 500, whatever text the link carries."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propmubi.testing import make_staff
from propmubi.testing import sign_in as console_sign_in

HTML = {"Accept": "text/html"}

#: Every keyset-paginated console list and the query parameter of its page link.
LISTS = [("/console/users", "cursor"), ("/console/kyc", "after"),
         ("/console/moderation", "cursor"), ("/console/builders", "cursor")]


def packed(value: Any) -> str:
    """``value`` packed as the cursor codec packs (JSON, base64url, no padding)."""
    return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()


#: Cursors that decode but name no position the database can hold, and plain junk.
MANGLED = [
    "junk", "%%%", "=", "AAAA", packed({"a": 1}), packed([]), packed([1, 2]),
    packed(["2026-01-01T00:00:00", "0190a8b4-0000-7000-8000-000000000000"]),  # no zone
    packed(["9999-12-31T23:59:59-23:59", "0190a8b4-0000-7000-8000-000000000000"]),
    packed(["0001-01-01T00:00:00+23:59", "0190a8b4-0000-7000-8000-000000000000"]),
    packed(["2026-01-01T00:00:00+00:00", "not-a-uuid"]),
    packed(["2026-01-01T00:00:00+00:00", "0190a8b4-0000-7000-8000-000000000000", 1]),
    "\u0000", "x" * 5000,
]


async def signed_in(client: Any, services: Any) -> None:
    await make_staff(services)
    assert (await console_sign_in(client)).status == 303


async def assert_broken_link(client: Any, path: str, param: str, value: str) -> None:
    response = await client.get(path, params={param: value}, headers=HTML)
    body = await response.text()
    assert response.status == 400, (path, value, body[:2000])
    assert "text/html" in response.headers["Content-Type"]
    assert "page link is not valid" in body


@pytest.mark.parametrize(("path", "param"), LISTS)
async def test_mangled_cursors_are_a_400_page(client, services, path, param):
    await signed_in(client, services)
    for value in MANGLED:
        await assert_broken_link(client, path, param, value)
    # A good first page still opens.
    assert (await client.get(path, headers=HTML)).status == 200


@pytest.fixture
async def staff_client(client: Any, services: Any) -> Any:
    """The test client, signed in once (hypothesis runs many examples on one client)."""
    await signed_in(client, services)
    return client


ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=200)
#: Lists of JSON values packed as cursors, and positions of any time zone and date.
PACKED = st.lists(st.one_of(st.text(max_size=40), st.integers(-2**63, 2**63 - 1), st.none()),
                  max_size=3).map(packed)
POSITIONS = st.tuples(st.datetimes(timezones=st.timezones()), st.uuids()).map(
    lambda p: packed([p[0].isoformat(), str(p[1])]))


@pytest.mark.parametrize(("path", "param"), LISTS)
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=st.one_of(ANY_TEXT, PACKED, POSITIONS))
async def test_any_text_as_a_cursor_is_never_a_server_error(staff_client, path, param, text):
    response = await staff_client.get(path, params={param: text}, headers=HTML)
    assert response.status in (200, 400), (text, await response.text())
