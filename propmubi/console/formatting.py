"""How console pages show values, available to every template as globals: ``when(at)`` for
timestamps and ``exact_money(minor, currency)`` for amounts. Amounts are integer minor units
(paise) and an ISO currency everywhere in Propmubi; this only formats them, exactly."""

from __future__ import annotations

import datetime as dt
import decimal

__all__ = ["GLOBALS", "exact", "when"]


def when(at: dt.datetime | None) -> str:
    """A timestamp as ``2026-11-21 14:03 UTC``; ``—`` for None."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "—"


def exact(minor: int | decimal.Decimal | None, currency: str = "INR") -> str:
    """``₹1,25,000.50`` for rupees (Indian digit grouping), ``12,500.00 USD`` otherwise;
    ``—`` for None. Integer arithmetic only."""
    if minor is None:
        return "—"
    if not isinstance(minor, int):  # a SQL sum() of bigint is numeric: a Decimal
        if minor != int(minor):
            raise ValueError(f"an amount in minor units is a whole number, not {minor!r}")
        minor = int(minor)
    sign = "-" if minor < 0 else ""
    whole, paise = divmod(abs(minor), 100)
    if currency.strip().upper() != "INR":
        return f"{sign}{whole:,}.{paise:02d} {currency.strip().upper()}"
    digits = str(whole)
    head, tail = digits[:-3], digits[-3:]
    groups: list[str] = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    if head:
        groups.insert(0, head)
    grouped = ",".join([*groups, tail]) if groups else tail
    return f"{sign}₹{grouped}.{paise:02d}"


#: What every console template may call.
GLOBALS = {"when": when, "exact_money": exact}
