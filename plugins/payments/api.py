"""What other plugins may ask this plugin: typed queries, run in the caller's database or
transaction.

Only a plugin whose ``PluginInfo.requires`` names this one may import this module, and no
other module of this plugin: pyproject.toml's import-linter independence contract allows
exactly the imports listed in its ``ignore_imports``, one line per importing module
(``"propmubi_plugins.<other>.service -> propmubi_plugins.<this>.api"``), and
tests/core/test_import_contracts.py checks each against ``requires``. Other plugins depend
on what is here: change it as carefully as an API.
"""

from __future__ import annotations

import uuid

from propmubi.db import Database, Tx
from propmubi_plugins.payments import store
from propmubi_plugins.payments.models import ItemOut

__all__ = ["ItemOut", "item"]


async def item(q: Database | Tx, item_id: uuid.UUID) -> ItemOut | None:
    """One item by id, or None."""
    row = await store.item(q, item_id)
    return ItemOut(**row) if row is not None else None
