"""``propmubi payments ...``: the operator's reconciliation commands.

- ``poll``: ask the providers about intents stuck open now (what the minute job does).
- ``reconcile --day YYYY-MM-DD``: match that day's settlement reports; prints each problem
  and exits 1 when there is any, so a cron wrapper can alert on it.
"""

from __future__ import annotations

import argparse
import datetime as dt

import attrs

from propmubi_plugins.payments import reconcile
from propmubi_plugins.payments.state import Ctx


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``payments`` actions."""
    sub = parser.add_subparsers(dest="payments_action", required=True, metavar="ACTION")
    sub.add_parser("poll", help="ask providers about intents stuck open")
    rec = sub.add_parser("reconcile", help="match a day's settlement reports")
    rec.add_argument("--day", type=_day, required=True, help="the settlement day, YYYY-MM-DD")


async def run(args: argparse.Namespace, ctx: Ctx) -> int:
    """Run one action; ``reconcile`` exits 1 when a line did not match."""
    if args.payments_action == "poll":
        report = await reconcile.poll(ctx)
        print(" ".join(f"{k}={v}" for k, v in attrs.asdict(report).items()))
        return 0
    result = await reconcile.settle(ctx, args.day)
    print(f"{result.day}: {result.lines} lines, {result.matched} matched, "
          f"{len(result.problems)} problems")
    for p in result.problems:
        print(f"  {p['provider']} {p['kind']} {p['provider_id']}: {p['status']} ({p['detail']})")
    return 1 if result.problems else 0
