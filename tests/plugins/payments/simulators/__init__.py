"""Loopback simulators of the payment providers' HTTP APIs, for tests and local runs.

:class:`RazorpaySimulator` and :class:`StripeSimulator` are real aiohttp servers on
127.0.0.1 that speak the providers' documented formats; ``fixtures`` has pytest fixtures
(``razorpay_sim``, ``stripe_sim``) that run one per test.
"""

from tests.plugins.payments.simulators.razorpay import RazorpaySimulator
from tests.plugins.payments.simulators.server import Recorded, Webhook
from tests.plugins.payments.simulators.stripe import StripeSimulator

__all__ = ["RazorpaySimulator", "Recorded", "StripeSimulator", "Webhook"]
