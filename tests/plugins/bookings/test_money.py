"""The money of bookings in integers only: a property test of the cancellation fee and refund,
the rounding rules, and no float anywhere in a money path."""

from __future__ import annotations

import ast
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import propmubi_plugins.bookings
from propmubi_plugins.bookings import money

CONFIRMED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
amounts = st.integers(min_value=0, max_value=10**15)
hours = st.integers(min_value=0, max_value=8760)
bps = st.integers(min_value=0, max_value=10_000)


@given(captured=amounts, price=st.integers(min_value=1, max_value=10**15), free=hours,
       fixed=amounts, rate=bps, elapsed=st.integers(min_value=0, max_value=2 * 8760 * 3600))
def test_fee_and_refund(captured, price, free, fixed, rate, elapsed):
    now = CONFIRMED + dt.timedelta(seconds=elapsed)
    fee, refund = money.cancellation(captured_minor=captured, price_minor=price,
                                     confirmed_at=CONFIRMED, now=now, free_cancel_hours=free,
                                     fee_fixed_minor=fixed, fee_bps=rate)
    assert type(fee) is int and type(refund) is int
    assert 0 <= refund <= captured
    if elapsed < free * 3600:
        assert fee == 0 and refund == captured
    else:
        assert fee >= fixed
        base = price
        # Half up, against exact decimal arithmetic.
        exact = Decimal(rate) * base / 10_000
        assert abs(Decimal(fee) - max(Decimal(fixed), exact)) <= Decimal("0.5")
        assert refund == max(0, captured - fee)


@given(price=st.integers(min_value=1, max_value=10**15),
       rate=st.integers(min_value=1, max_value=1000))
def test_a_percentage_booking_amount_never_exceeds_the_rera_cap(price, rate):
    assert money.amount_due(price, "percent", None, rate) <= money.rera_cap(price)
    assert money.rera_cap(price) == price * 10 // 100


def test_rounding_rules():
    assert money.half_up(5, 10) == 1 and money.half_up(4, 10) == 0 and money.half_up(15, 10) == 2
    assert money.amount_due(105, "percent", None, 1000) == 10  # 10.5 rounds down
    assert money.rera_cap(105) == 10
    fee, refund = money.cancellation(captured_minor=1_000, price_minor=1_000,
                                     confirmed_at=CONFIRMED, now=CONFIRMED + dt.timedelta(days=3),
                                     free_cancel_hours=48, fee_fixed_minor=0, fee_bps=25)
    assert (fee, refund) == (3, 997)  # 2.5 rounds half up


@pytest.mark.parametrize("value", [1.0, Decimal(1), True, "1"])
def test_a_float_or_anything_but_an_int_is_refused(value):
    with pytest.raises(TypeError):
        money.rera_cap(value)
    with pytest.raises(TypeError):
        money.amount(value)
    with pytest.raises(TypeError):
        money.cancellation(captured_minor=value, price_minor=1, confirmed_at=CONFIRMED,
                           now=CONFIRMED, free_cancel_hours=0, fee_fixed_minor=0, fee_bps=0)


def test_no_float_in_the_plugins_code():
    """No float literal, ``float(...)`` or true division (other than joining a path) in the
    plugin's Python, and no fractional column type in its migrations: money stays integer
    minor units everywhere."""
    root = Path(propmubi_plugins.bookings.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and type(node.value) is float:
                found.append(f"{path.name}:{node.lineno} float literal")
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "float":
                found.append(f"{path.name}:{node.lineno} float()")
            elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
                  and not isinstance(node.right, ast.Constant | ast.JoinedStr)):  # not a path
                found.append(f"{path.name}:{node.lineno} true division")
    assert found == []
    sql = "\n".join(line.split("--")[0] for p in (root / "migrations").glob("*.sql")
                    for line in p.read_text().lower().splitlines())
    for kind in ("numeric", "decimal", "real", "double precision", "float", "money"):
        assert f" {kind}" not in sql, kind
