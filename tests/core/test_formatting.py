"""The console's value formatting (template globals): exact money in integers, UTC times."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from propmubi.console.formatting import exact, when


def test_money_is_exact_with_indian_grouping() -> None:
    assert exact(8_50_000_00) == "₹8,50,000.00"
    assert exact(1_25_00_000_05) == "₹1,25,00,000.05"
    assert exact(99_900) == "₹999.00" and exact(0) == "₹0.00" and exact(5) == "₹0.05"
    assert exact(-150) == "-₹1.50"
    assert exact(12_500_00, "USD") == "12,500.00 USD"
    assert exact(None) == "—"


@given(st.integers(min_value=-10**15, max_value=10**15))
def test_money_round_trips(minor: int) -> None:
    text = exact(minor).replace("₹", "").replace(",", "")
    rupees, paise = text.lstrip("-").split(".")
    assert (int(rupees) * 100 + int(paise)) * (-1 if minor < 0 else 1) == minor


def test_when_is_utc() -> None:
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    assert when(dt.datetime(2026, 12, 4, 20, 0, tzinfo=ist)) == "2026-12-04 14:30 UTC"
    assert when(None) == "—"


def test_money_from_a_sql_sum_is_shown_and_a_fraction_refused() -> None:
    """PostgreSQL's sum() of bigint is numeric (a Decimal in Python): shown the same;
    a fractional amount of paise is a bug, said so, never rounded."""
    assert exact(decimal.Decimal(8_50_000_00)) == "₹8,50,000.00"
    with pytest.raises(ValueError, match="whole number"):
        exact(decimal.Decimal("10.5"))
