"""Fixtures of the payments plugin's tests.

The whole chain runs: auth (real users and tokens), catalog (a published project with units),
bookings (holds through the API) and payments, with the ``sandbox`` provider unless a test
module overrides ``payments_settings`` (the Razorpay and Stripe tests point a provider at its
loopback simulator). The catalogue's fixtures (users, projects) are reused from its conftest.

- ``project``: a published project of ``builder`` with two units (A-101 at 85 lakh, A-201 at
  90 lakh).
- ``hold(user, unit_id=None)``: ``POST /holds`` as ``user`` (A-101 by default); the booking.
- ``pay_ctx(client)``: the payments plugin's context in the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from propmubi.web.appkeys import SERVICES
from tests.plugins.auth.conftest import AUTH_SETTINGS
from tests.plugins.catalog.conftest import (  # noqa: F401  (fixtures)
    API,
    User,
    admin,
    builder,
    buyer,
    make_project,
    make_user,
    staff,
)
from tests.plugins.payments.simulators.fixtures import razorpay_sim, stripe_sim  # noqa: F401


@pytest.fixture
def payments_settings() -> dict[str, Any]:
    """``[plugins.payments]`` of the test (the sandbox by default)."""
    return {"provider": "sandbox"}


@pytest.fixture
def config_overrides(payments_settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"plugins": {"settings": {"auth": dict(AUTH_SETTINGS),
                                     "payments": payments_settings}},
            "ratelimit": {"enabled": False}}


def pay_ctx(client: Any) -> Any:
    """The payments plugin's context in the test client's application."""
    return client.app[SERVICES].context("payments")


@pytest.fixture
async def project(builder: User, make_project: Any) -> dict[str, Any]:  # noqa: F811
    return await make_project(builder, moderation="published")


async def unit_id_of(client: Any, project: dict[str, Any], code: str = "A-101") -> str:
    resp = await client.get(f"{API}/projects/{project['id']}/units")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    items = body["items"] if isinstance(body, dict) else body
    return next(u["id"] for u in items if u["code"] == code)


Hold = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def hold(client: Any, project: dict[str, Any]) -> Hold:
    async def make(user: User, code: str = "A-101") -> dict[str, Any]:
        unit_id = await unit_id_of(client, project, code)
        resp = await client.post(f"{API}/holds", json={"unit_id": unit_id},
                                 headers=user.headers)
        assert resp.status == 201, await resp.text()
        return await resp.json()

    return make


async def booking_of(client: Any, user: User, booking_id: str) -> dict[str, Any]:
    resp = await client.get(f"{API}/bookings/{booking_id}", headers=user.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def deliver(client: Any, provider: str, webhook: Any) -> dict[str, Any]:
    """POST a simulator's webhook to our endpoint as the provider would; our answer."""
    resp = await client.post(f"{API}/payments/webhooks/{provider}", data=webhook.body,
                             headers=webhook.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def open_intent(client: Any, user: User, booking_id: str, **headers: str
                      ) -> dict[str, Any]:
    resp = await client.post(f"{API}/bookings/{booking_id}/payment-intents",
                             headers={**user.headers, **headers})
    assert resp.status == 201, await resp.text()
    return await resp.json()
