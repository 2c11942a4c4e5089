"""pytest fixtures that start a simulator on loopback for one test and stop it after.

Import them into a conftest.py (or a test module) to use them by name::

    from tests.plugins.payments.simulators.fixtures import razorpay_sim, stripe_sim
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.plugins.payments.simulators.razorpay import RazorpaySimulator
from tests.plugins.payments.simulators.stripe import StripeSimulator

__all__ = ["razorpay_sim", "stripe_sim"]


@pytest.fixture
async def razorpay_sim() -> AsyncIterator[RazorpaySimulator]:
    """A running Razorpay simulator; ``razorpay_sim.settings()`` points a provider at it."""
    sim = RazorpaySimulator()
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def stripe_sim() -> AsyncIterator[StripeSimulator]:
    """A running Stripe simulator; ``stripe_sim.settings()`` points a provider at it."""
    sim = StripeSimulator()
    await sim.start()
    yield sim
    await sim.stop()
