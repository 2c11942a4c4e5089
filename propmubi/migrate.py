"""Plain-SQL migrations: the core's first, then each plugin's in dependency order.

Files are ``NNNN_<what>.sql`` with an optional ``NNNN_<what>.down.sql``. Each runs in its own
transaction, together with its row in ``schema_migrations`` (checksum included). A file whose first
line is ``-- propmubi: no-transaction`` runs statement by statement outside any transaction, for
statements such as ``CREATE INDEX CONCURRENTLY``; a failure there leaves the statements before it
applied, so write them to be re-runnable (``IF NOT EXISTS``). A session advisory lock serialises
concurrent runners: two VMs deploying at once apply each file once. A recorded file whose content
changed is refused, naming the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from propmubi.config import ConfigError
from propmubi.db import DatabaseError, QueryCanceled, connect_once
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
# aiopg closes a connection whose statement outlasts its client-side timeout (60 s for
# connect_once); building an index on a big table legitimately takes far longer.
STATEMENT_WAIT = 24 * 3600.0
# A no-transaction file is split into statements: a multi-statement query string is one implicit
# transaction to PostgreSQL, which CREATE INDEX CONCURRENTLY refuses. Quotes, comments and
# dollar-quoted bodies are matched whole so that a `;` inside them does not split.
_LEXEME = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/"""
                     r"|\$([A-Za-z_][A-Za-z0-9_]*|)\$.*?\$\1\$|;", re.S)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_RECORD = ("INSERT INTO schema_migrations (plugin, version, name, checksum) "
           "VALUES (%s, %s, %s, %s)")
_FORGET = "DELETE FROM schema_migrations WHERE plugin = %s AND version = %s"

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
        return self.path.read_text(encoding="utf-8")

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
    # A folder left out of the installed package would otherwise mean "no tables", silently.
    if not folder.is_dir():
        raise MigrationError(f"{plugin}: migrations folder {folder} does not exist")
    found: dict[int, Migration] = {}
    downs: set[Path] = set()
    for path in sorted(folder.glob("*.sql")):
        if path.name.endswith(".down.sql"):
            downs.add(path)
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
    # A misnamed .down.sql would only show up when a rollback is needed, i.e. at the worst time.
    orphans = sorted(downs - {m.down_path for m in found.values()})
    if orphans:
        raise MigrationError(f"{plugin}/{orphans[0].name}: no {orphans[0].name[:-9]}.sql "
                             "next to it to roll back")
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


@contextlib.asynccontextmanager
async def _locked(url: str, wait: float) -> AsyncIterator[Any]:
    """A cursor on a connection of its own that holds the runners' advisory lock."""
    conn = await connect_once(url)
    try:
        async with conn.cursor(timeout=STATEMENT_WAIT) as cur:
            await _lock(cur, wait)
            try:
                yield cur
            finally:
                # Ending the session releases the lock as well, so a connection that is already
                # closed (or cannot answer) needs nothing more.
                if not conn.closed:
                    with contextlib.suppress(DatabaseError):
                        await cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    finally:
        await conn.close()


def _statements(sql: str) -> list[str]:
    """Split SQL at the semicolons outside quotes, comments and dollar-quoted bodies."""
    pieces, start = [], 0
    for match in _LEXEME.finditer(sql):
        if match[0] == ";":
            pieces.append(sql[start:match.end()])
            start = match.end()
    pieces.append(sql[start:])
    return [p for p in pieces if _COMMENT.sub("", p).strip(" \t\r\n;")]


async def _run_file(cur: Any, label: str, sql: str, bookkeeping: tuple[str, tuple[Any, ...]]
                    ) -> None:
    """Run one file and then its ``schema_migrations`` change, in one transaction when it has one.

    :raises MigrationError: naming ``label``, whatever the way the file failed.
    """
    try:
        if sql.lstrip().startswith(_NO_TX):
            for statement in _statements(sql):
                await cur.execute(statement)
            await cur.execute(*bookkeeping)
            return
        await cur.execute("BEGIN")
        try:
            await cur.execute(sql)
            await cur.execute(*bookkeeping)
            await cur.execute("COMMIT")
        except BaseException:
            # COMMIT itself may be what failed (a deferred constraint): ROLLBACK then only warns.
            # A closed connection cannot roll back; the server does it when the session ends.
            with contextlib.suppress(DatabaseError):
                await cur.execute("ROLLBACK")
            raise
    except DatabaseError as exc:
        raise MigrationError(f"{label} failed: {str(exc).strip()}") from exc
    except TimeoutError as exc:
        raise MigrationError(f"{label} was still running after {STATEMENT_WAIT:g}s; its "
                             "connection was closed") from exc
    except asyncio.CancelledError as exc:
        # aiopg turns a server-side cancel (statement_timeout, pg_cancel_backend) into
        # CancelledError; a real cancellation of this task carries no QueryCanceled.
        if not isinstance(exc.__context__, QueryCanceled):
            raise
        raise MigrationError(f"{label} failed: {str(exc.__context__).strip()}") from exc


async def up(url: str, plugins: PluginSet, *, lock_wait: float = 300.0) -> list[Migration]:
    """Apply every pending migration; return what was applied.

    :param lock_wait: seconds to wait for another runner to finish before giving up.
    :raises MigrationError: when an applied file changed (nothing is applied) or a file fails (its
        own transaction is rolled back; files applied before it stay applied).
    """
    files = migrations_for(plugins)
    async with _locked(url, lock_wait) as cur:
        await cur.execute(BOOTSTRAP)
        state = _compare(files, await _applied(cur))
        if state.changed:
            raise MigrationError(
                f"{', '.join(m.label for m in state.changed)} changed after being applied "
                "(checksum differs); restore it and add a new migration instead")
        for migration in state.pending:
            log.info("applying migration %s", migration.label)
            await _run_file(cur, migration.label, migration.sql,
                            (_RECORD, (migration.plugin, migration.version, migration.name,
                                       migration.checksum)))
        return state.pending


async def down(url: str, plugins: PluginSet, plugin: str, to_version: int) -> list[Migration]:
    """Roll ``plugin`` back to ``to_version`` with its ``.down.sql`` files, newest first.

    :returns: the migrations rolled back, in the order they were.
    :raises MigrationError: when a needed ``.down.sql`` file is missing (nothing is changed) or one
        fails (those rolled back before it stay rolled back).
    """
    if plugin not in plugins:
        raise MigrationError(f"plugin {plugin!r} is not enabled")
    files = {m.version: m for m in migrations_for(plugins) if m.plugin == plugin}
    async with _locked(url, 300.0) as cur:
        applied = [r for r in await _applied(cur)
                   if r["plugin"] == plugin and r["version"] > to_version]
        applied.sort(key=lambda r: r["version"], reverse=True)
        undo = []
        for row in applied:
            name = f"{plugin}/{row['version']:04d}_{row['name']}"
            migration = files.get(row["version"])
            if migration is None:
                raise MigrationError(f"{name}.sql is applied but its file is gone; "
                                     "cannot roll it back")
            if migration.down_path is None:
                raise MigrationError(f"{name}.down.sql does not exist; cannot roll back "
                                     f"{migration.label}")
            undo.append(migration)
        for migration in undo:
            assert migration.down_path is not None
            log.info("rolling back migration %s", migration.label)
            await _run_file(cur, f"{plugin}/{migration.down_path.name}",
                            migration.down_path.read_text(encoding="utf-8"),
                            (_FORGET, (migration.plugin, migration.version)))
        return undo
