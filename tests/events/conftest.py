"""Event-bus tests load the publisher and subscriber test plugins."""

from typing import Any

import pytest

import tests.refplugin
from tests.busplugins import audit, ledger, tally


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [tests.refplugin, ledger, tally, audit]


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    # Fast retries so the failure tests finish quickly.
    return {"events": {"retry_base": 0.05, "retry_max": 0.2, "retry_scan": 0.05,
                       "claim_idle": 1.0, "max_deliveries": 3, "block_ms": 100}}
