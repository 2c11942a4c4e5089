"""PostgreSQL through aiopg: pools, transactions, dict rows, replica routing and query metrics.

This is the only module that imports aiopg or psycopg2, so the driver is one file's decision.
SQL uses psycopg2's ``%s`` / ``%(name)s`` placeholders; values are always passed as parameters.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

import aiopg
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
from prometheus_client import REGISTRY, Histogram

from propmubi.config import DatabaseSection
from propmubi.observability import PoolCollector

__all__ = [
    "Database",
    "DatabaseError",
    "ForeignKeyViolation",
    "IntegrityError",
    "InterfaceError",
    "OperationalError",
    "QueryCanceled",
    "SerializationFailure",
    "TransactionRollbackError",
    "Tx",
    "UniqueViolation",
    "admin_execute",
    "connect_once",
    "quote_ident",
    "with_database",
]

# Re-exported so that plugins catch driver errors without importing the driver.
DatabaseError = psycopg2.Error
IntegrityError = psycopg2.IntegrityError
UniqueViolation = psycopg2.errors.UniqueViolation
ForeignKeyViolation = psycopg2.errors.ForeignKeyViolation
SerializationFailure = psycopg2.errors.SerializationFailure
QueryCanceled = psycopg2.errors.QueryCanceled
OperationalError = psycopg2.OperationalError
InterfaceError = psycopg2.InterfaceError
#: Deadlocks and serialization failures: PostgreSQL rolled back; running again usually works.
TransactionRollbackError = psycopg2.extensions.TransactionRollbackError

psycopg2.extras.register_uuid()
# JSON parameters: wrap dicts/lists with Json so plugins can pass them directly.
psycopg2.extensions.register_adapter(dict, psycopg2.extras.Json)

QUERY_SECONDS = Histogram(
    "propmubi_db_query_duration_seconds",
    "Time from sending a statement to having its rows, by pool and statement kind.",
    ["pool", "kind"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


_OPEN: weakref.WeakSet[Database] = weakref.WeakSet()


def _pool_stats() -> dict[str, dict[str, int]]:
    total: dict[str, dict[str, int]] = {}
    for database in list(_OPEN):
        for pool, values in database.stats().items():
            for state, value in values.items():
                total.setdefault(pool, {}).setdefault(state, 0)
                total[pool][state] += value
    return total


REGISTRY.register(PoolCollector("db", _pool_stats))


def quote_ident(name: str) -> str:
    """Quote an identifier (a database name in CREATE DATABASE, say); never for values."""
    return '"' + name.replace('"', '""') + '"'


def _rows(cur: Any, rows: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in rows]


class _Queries(abc.ABC):
    """Fetch helpers shared by :class:`Tx` (one connection) and :class:`Database` (the pool)."""

    @abc.abstractmethod
    async def _run(self, kind: str, sql: str, params: Any, fetch: str) -> Any:
        """Run one statement where the subclass runs statements; shape the result by ``fetch``."""

    async def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
                      ) -> int:
        """Run a statement; return the number of rows it affected."""
        return cast(int, await self._run("execute", sql, params, "rowcount"))

    async def fetch(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
                    ) -> list[dict[str, Any]]:
        """Run a query; return every row as a dict keyed by column name."""
        return cast("list[dict[str, Any]]", await self._run("fetch", sql, params, "all"))

    async def fetchrow(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
                       ) -> dict[str, Any] | None:
        """Run a query; return its first row as a dict, or None."""
        return cast("dict[str, Any] | None", await self._run("fetchrow", sql, params, "one"))

    async def fetchval(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
                       ) -> Any:
        """Run a query; return the first column of its first row, or None."""
        return await self._run("fetchval", sql, params, "value")


async def _execute(cur: Any, pool: str, kind: str, sql: str, params: Any, fetch: str) -> Any:
    started = time.perf_counter()
    try:
        await cur.execute(sql, params)
    except asyncio.CancelledError:
        # aiopg reports a server-side cancel (statement_timeout) as CancelledError; only a
        # cancellation of this task is one. The other is a query error like any other.
        task = asyncio.current_task()
        if task is not None and task.cancelling() == 0:
            raise QueryCanceled("canceling statement due to statement timeout") from None
        raise
    if fetch == "rowcount":
        result: Any = cur.rowcount
    elif fetch == "all":
        result = _rows(cur, await cur.fetchall())
    else:
        row = await cur.fetchone()
        if fetch == "value":
            result = None if row is None else row[0]
        else:
            result = None if row is None else _rows(cur, [row])[0]
    QUERY_SECONDS.labels(pool, kind).observe(time.perf_counter() - started)
    return result


class Tx(_Queries):
    """A transaction on one connection; obtained from :meth:`Database.transaction`."""

    def __init__(self, db: Database, conn: Any, cur: Any) -> None:
        self.db = db
        self.connection = conn
        self._cur = cur
        #: Callables run after COMMIT succeeds (wake the outbox relay, drop a cache entry, ...).
        self.after_commit: list[Any] = []

    async def _run(self, kind: str, sql: str, params: Any, fetch: str) -> Any:
        return await _execute(self._cur, "primary", kind, sql, params, fetch)


class Database(_Queries):
    """The primary pool and, when configured, a read-replica pool.

    A FIFO semaphore sized to the pool sits in front of ``acquire``: aiopg hands a freed
    connection to whoever asks next rather than to the longest waiter, which under contention
    starves some requests for seconds (without the gate, p99 latency measured 0.4-1 s under a
    load that queues for connections). With the gate, waiting is first come, first served.
    """

    def __init__(self, settings: DatabaseSection) -> None:
        if not settings.url:
            raise ValueError("database.url is empty")
        self.settings = settings
        self._pool: Any = None
        self._replica: Any = None
        #: The event catalog, set when the event bus starts; ``publish()`` checks types with it.
        self.catalog: Any = None
        self._gate = asyncio.Semaphore(settings.pool_max)
        self._replica_gate = asyncio.Semaphore(settings.pool_max)
        self.waiting = 0

    async def open(self) -> None:
        """Create the pools (connections open lazily up to ``pool_max``)."""
        self._pool = await self._create(self.settings.url)
        if self.settings.replica_url:
            self._replica = await self._create(self.settings.replica_url)
        _OPEN.add(self)

    async def _create(self, url: str) -> Any:
        s = self.settings
        return await aiopg.create_pool(
            url,
            minsize=s.pool_min,
            maxsize=s.pool_max,
            # aiopg's hstore support would adapt every dict parameter to hstore, overriding the
            # dict -> JSON adapter above.
            enable_hstore=False,
            # aiopg's own operation timeout must outlast the server-side one, which is the
            # one that reports a clean QueryCanceled.
            timeout=s.statement_timeout_ms / 1000 + 5,
            options=f"-c statement_timeout={s.statement_timeout_ms}",
            connect_timeout=max(1, int(s.connect_timeout)),
            application_name="propmubi",
        )

    async def close(self) -> None:
        """Close the pools, waiting for connections in use to come back."""
        for pool in (self._pool, self._replica):
            if pool is not None:
                pool.close()
                await pool.wait_closed()
        self._pool = self._replica = None
        _OPEN.discard(self)

    def stats(self) -> dict[str, dict[str, int]]:
        """Size, free and in-use connections per pool, plus requests waiting at the gate."""
        out = {}
        for label, pool in (("primary", self._pool), ("replica", self._replica)):
            if pool is not None:
                out[label] = {"size": pool.size, "free": pool.freesize,
                              "used": pool.size - pool.freesize, "max": pool.maxsize}
        if "primary" in out:
            out["primary"]["waiting"] = self.waiting
        return out

    @contextlib.asynccontextmanager
    async def connection(self, replica: bool = False) -> AsyncIterator[Any]:
        """Borrow a raw connection (for LISTEN, COPY and other driver-level work).

        :param replica: from the read replica when one is configured (it may lag the
            primary: never for availability checks or anything written back).
        """
        pool = self._replica if replica and self._replica is not None else self._pool
        gate = self._replica_gate if pool is self._replica else self._gate
        if pool is None:
            raise RuntimeError("Database.open() has not been awaited")
        self.waiting += 1
        try:
            await gate.acquire()
        finally:
            self.waiting -= 1
        try:
            async with pool.acquire() as conn:
                yield conn
        finally:
            gate.release()

    async def _run(self, kind: str, sql: str, params: Any, fetch: str) -> Any:
        async with self.connection() as conn, conn.cursor() as cur:
            return await _execute(cur, "primary", kind, sql, params, fetch)

    @contextlib.asynccontextmanager
    async def transaction(self, isolation: str = "READ COMMITTED") -> AsyncIterator[Tx]:
        """Run statements in one transaction on one connection.

        aiopg connections are in autocommit mode, so BEGIN / COMMIT / ROLLBACK are sent
        explicitly. The block commits when it exits normally and rolls back on any exception,
        including cancellation. Callables appended to ``tx.after_commit`` run after COMMIT.

        :param isolation: ``READ COMMITTED``, ``REPEATABLE READ`` or ``SERIALIZABLE``.
        """
        if isolation not in {"READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"}:
            raise ValueError(f"unknown isolation level {isolation!r}")
        async with self.connection() as conn, conn.cursor() as cur:
            await cur.execute(f"BEGIN ISOLATION LEVEL {isolation}")
            tx = Tx(self, conn, cur)
            try:
                yield tx
            except BaseException:
                # A broken connection cannot roll back; the pool discards it either way.
                with contextlib.suppress(psycopg2.Error, asyncio.CancelledError):
                    await asyncio.shield(cur.execute("ROLLBACK"))
                raise
            await cur.execute("COMMIT")
        for callback in tx.after_commit:
            await callback() if asyncio.iscoroutinefunction(callback) else callback()


def admin_execute(url: str, statement: str) -> None:
    """Run one statement outside a transaction, synchronously (CREATE/DROP DATABASE in tools
    and test set-up). ``statement`` must be built from trusted names (see :func:`quote_ident`)."""
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


async def connect_once(url: str, connect_timeout: float = 5.0) -> Any:
    """Open one connection outside any pool (migrations, admin tasks); the caller closes it."""
    return await aiopg.connect(url, timeout=60.0, connect_timeout=max(1, int(connect_timeout)),
                               enable_hstore=False)
