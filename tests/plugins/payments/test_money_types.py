"""Money is integer minor units everywhere: no float, real, double or numeric column in the
money plugins' schemas, no float-typed field in their models, and no float in what the
database holds or the API answers about money."""

from __future__ import annotations

import re
import time
import typing
from pathlib import Path
from typing import Any

import attrs
import pytest

import propmubi_plugins.bookings
import propmubi_plugins.payments
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.bookings import models as booking_models
from propmubi_plugins.payments import models as payment_models
from propmubi_plugins.payments import sandbox_flow
from tests.plugins.payments.conftest import API, open_intent, pay_ctx

PLUGINS = [Path(propmubi_plugins.bookings.__file__).parent,
           Path(propmubi_plugins.payments.__file__).parent]
FLOATY = re.compile(r"\b(float\d*|real|double\s+precision|numeric|decimal|money)\b", re.I)


@pytest.mark.parametrize("folder", PLUGINS, ids=lambda p: p.name)
def test_no_float_column(folder: Path) -> None:
    for sql in sorted((folder / "migrations").glob("*.sql")):
        code = "\n".join(line.split("--")[0] for line in sql.read_text().splitlines())
        assert not FLOATY.search(code), f"{sql.name}: {FLOATY.search(code)}"


@pytest.mark.parametrize("module", [booking_models, payment_models],
                         ids=lambda m: m.__name__)
def test_no_float_field(module: Any) -> None:
    for cls in vars(module).values():
        if isinstance(cls, type) and attrs.has(cls):
            for name, tp in typing.get_type_hints(cls).items():
                assert "float" not in str(tp), f"{cls.__name__}.{name}: {tp}"
                if name.endswith("_minor") or name.endswith("_bps"):
                    assert "int" in str(tp), f"{cls.__name__}.{name}: {tp}"


def _money_values(data: Any) -> list[Any]:
    if isinstance(data, dict):
        return [v for k, v in data.items() if k.endswith(("_minor", "_bps"))] + [
            x for v in data.values() for x in _money_values(v)]
    if isinstance(data, list):
        return [x for v in data for x in _money_values(v)]
    return []


async def test_answers_and_rows_hold_integers(client: Any, buyer: Any, hold: Any,
                                              event_bus: Any) -> None:
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    await sandbox_flow.complete(pay_ctx(client), intent["id"], "captured", time.time())
    await event_bus.drain()
    answers = [booking, intent]
    for url in (f"{API}/bookings/{booking['id']}", f"{API}/payments/intents/{intent['id']}"):
        answers.append(await (await client.get(url, headers=buyer.headers)).json())
    values = _money_values(answers)
    assert values and all(v is None or type(v) is int for v in values), values
    db = client.app[SERVICES].db
    for table in ("payments_intents", "payments_events", "bookings_bookings"):
        for row in await db.fetch(f"SELECT * FROM {table}"):
            for key, value in row.items():
                assert not isinstance(value, float), f"{table}.{key} = {value!r}"

