"""Plain-SQL migrations: the core's first, then each plugin's in dependency order.

Files are ``NNNN_<what>.sql`` with an optional ``NNNN_<what>.down.sql``. Each runs in its own
transaction (unless its first line is ``-- propmubi: no-transaction``, for statements such as
``CREATE INDEX CONCURRENTLY``) and is recorded in ``schema_migrations`` with its checksum. A
session advisory lock serialises concurrent runners: two VMs deploying at once apply each file
once. A recorded file whose content changed is refused, naming the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from propmubi.config import ConfigError
from propmubi.db import connect_once
from propmubi.plugins import PluginSet

__all__ = [
    "LOCK_KEY",
    "Migration",
    "MigrationError",
    "Status",
    "down",
    "migrations_for",
    "pending",
    "status",
    "up",
]

log = logging.getLogger(__name__)

# "propmubi" in ASCII: the key of the session advisory lock every runner takes.
LOCK_KEY = 0x70726F706D756269
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_NO_TX = "-- propmubi: no-transaction"

BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    plugin      text        NOT NULL,
    version     integer     NOT NULL,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plugin, version)
)
"""


class MigrationError(ConfigError):
    """The schema cannot be brought to the wanted state; the message says which file and why."""


@attrs.frozen
class Migration:
    """One ``NNNN_<what>.sql`` file of one plugin."""

    plugin: str
    version: int
    name: str
    path: Path
    down_path: Path | None

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.plugin}/{self.path.name}"


@attrs.frozen
class Status:
    """Where the schema stands: what is applied, what is pending, what changed since applied."""

    applied: list[dict[str, Any]]
    pending: list[Migration]
    changed: list[Migration]

    @property
    def current(self) -> bool:
        return not self.pending and not self.changed


def _folder_migrations(plugin: str, folder: Path) -> list[Migration]:
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        if path.name.endswith(".down.sql"):
            continue
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{plugin}/{path.name}: expected a name like 0001_what.sql")
        version = int(match[1])
        if version in found:
            raise MigrationError(f"{plugin}: two migrations have version {version}: "
                                 f"{found[version].path.name} and {path.name}")
        down_path = path.with_name(path.name[:-4] + ".down.sql")
        found[version] = Migration(plugin, version, match[2], path,
                                   down_path if down_path.exists() else None)
    return [found[v] for v in sorted(found)]


def migrations_for(plugins: PluginSet) -> list[Migration]:
    """Every migration of the enabled plugins, in the order they apply."""
    out: list[Migration] = []
    for plugin, folder in plugins.call("propmubi_migrations"):
        out += _folder_migrations(plugin.name, Path(folder))
    return out


async def _applied(cur: Any) -> list[dict[str, Any]]:
    await cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not (await cur.fetchone())[0]:
        return []
    await cur.execute("SELECT plugin, version, name, checksum, applied_at "
                      "FROM schema_migrations ORDER BY applied_at, plugin, version")
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]


def _compare(files: Sequence[Migration], applied: list[dict[str, Any]]) -> Status:
    done = {(row["plugin"], row["version"]): row for row in applied}
    pending = [m for m in files if (m.plugin, m.version) not in done]
    changed = [m for m in files if (m.plugin, m.version) in done
               and done[(m.plugin, m.version)]["checksum"] != m.checksum]
    return Status(applied=applied, pending=pending, changed=changed)


async def status(url: str, plugins: PluginSet) -> Status:
    """Compare the migration files with ``schema_migrations`` (read only, no lock)."""
    conn = await connect_once(url)
    try:
        async with conn.cursor() as cur:
            return _compare(migrations_for(plugins), await _applied(cur))
    finally:
        await conn.close()


async def pending(db: Any, plugins: PluginSet) -> Status:
    """Like :func:`status`, through an open :class:`propmubi.db.Database` (used by /ready)."""
    async with db.connection() as conn, conn.cursor() as cur:
        return _compare(migrations_for(plugins), await _applied(cur))


async def _lock(cur: Any, wait: float) -> None:
    deadline = time.monotonic() + wait
    announced = False
    while True:
        await cur.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
        if (await cur.fetchone())[0]:
            return
        if not announced:
            log.info("another migration runner holds the lock; waiting")
            announced = True
        if time.monotonic() > deadline:
            raise MigrationError(f"another migration runner held the lock for over {wait:g}s")
        await asyncio.sleep(0.2)


async def _run_file(cur: Any, sql: str, label: str) -> None:
    transactional = not sql.lstrip().startswith(_NO_TX)
    try:
        if transactional:
            await cur.execute("BEGIN")
        await cur.execute(sql)
    except Exception as exc:
        if transactional:
            await cur.execute("ROLLBACK")
        raise MigrationError(f"{label} failed: {str(exc).strip()}") from exc


async def up(url: str, plugins: PluginSet, *, lock_wait: float = 300.0) -> list[Migration]:
    """Apply every pending migration; return what was applied.

    :raises MigrationError: when an applied file changed or a file fails (its own transaction is
        rolled back; files applied before it stay applied).
    """
    files = migrations_for(plugins)
    conn = await connect_once(url)
    try:
        async with conn.cursor() as cur:
            await _lock(cur, lock_wait)
            try:
                await cur.execute(BOOTSTRAP)
                state = _compare(files, await _applied(cur))
                if state.changed:
                    raise MigrationError(
                        f"{state.changed[0].label} was changed after it was applied "
                        "(checksum differs); restore it and add a new migration instead")
                for migration in state.pending:
                    log.info("applying migration %s", migration.label)
                    await _run_file(cur, migration.sql, migration.label)
                    record = ("INSERT INTO schema_migrations (plugin, version, name, checksum) "
                              "VALUES (%s, %s, %s, %s)")
                    await cur.execute(record, (migration.plugin, migration.version,
                                               migration.name, migration.checksum))
                    if not migration.sql.lstrip().startswith(_NO_TX):
                        await cur.execute("COMMIT")
                return state.pending
            finally:
                await cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    finally:
        await conn.close()


async def down(url: str, plugins: PluginSet, plugin: str, to_version: int) -> list[Migration]:
    """Roll ``plugin`` back to ``to_version`` with its ``.down.sql`` files, newest first.

    :raises MigrationError: when a needed ``.down.sql`` file is missing (nothing is changed).
    """
    files = {m.version: m for m in migrations_for(plugins) if m.plugin == plugin}
    if plugin not in plugins:
        raise MigrationError(f"plugin {plugin!r} is not enabled")
    conn = await connect_once(url)
    try:
        async with conn.cursor() as cur:
            await _lock(cur, 300.0)
            try:
                applied = [r for r in await _applied(cur)
                           if r["plugin"] == plugin and r["version"] > to_version]
                applied.sort(key=lambda r: r["version"], reverse=True)
                undo = []
                for row in applied:
                    migration = files.get(row["version"])
                    if migration is None or migration.down_path is None:
                        raise MigrationError(f"{plugin}/{row['version']:04d}_{row['name']}: "
                                             "no .down.sql file; cannot roll back")
                    undo.append(migration)
                for migration in undo:
                    log.info("rolling back migration %s", migration.label)
                    assert migration.down_path is not None
                    await _run_file(cur, migration.down_path.read_text(), migration.label)
                    await cur.execute("DELETE FROM schema_migrations "
                                      "WHERE plugin = %s AND version = %s",
                                      (migration.plugin, migration.version))
                    await cur.execute("COMMIT")
                return undo
            finally:
                await cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    finally:
        await conn.close()
