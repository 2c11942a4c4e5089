"""The database layer: transactions, row helpers, timeouts, replica routing, pool metrics."""

import asyncio
import datetime as dt
import uuid

import pytest

from propmubi.config import DatabaseSection
from propmubi.db import Database, QueryCanceled, UniqueViolation
from propmubi.observability import render_metrics


@pytest.fixture
async def db(migrated):
    database = Database(migrated.database)
    await database.open()
    await database.execute("CREATE TABLE t (id uuid PRIMARY KEY, n int, doc jsonb, "
                           "at timestamptz DEFAULT now())")
    yield database
    await database.close()


async def test_rows_come_back_as_dicts_with_python_types(db):
    key = uuid.uuid4()
    assert await db.execute("INSERT INTO t (id, n, doc) VALUES (%s, %s, %s)",
                            (key, 1, {"a": [1, 2]})) == 1
    row = await db.fetchrow("SELECT id, n, doc, at FROM t")
    assert row["id"] == key and row["n"] == 1 and row["doc"] == {"a": [1, 2]}
    assert isinstance(row["at"], dt.datetime) and row["at"].tzinfo is not None
    assert await db.fetchval("SELECT n FROM t WHERE id = %(id)s", {"id": key}) == 1
    assert await db.fetchrow("SELECT * FROM t WHERE n = 42") is None
    assert await db.fetchval("SELECT n FROM t WHERE n = 42") is None
    assert await db.fetch("SELECT n FROM t") == [{"n": 1}]


async def test_a_transaction_commits_or_rolls_back_as_a_whole(db):
    committed = []
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO t (id, n) VALUES (%s, 1)", (uuid.uuid4(),))
        tx.after_commit.append(lambda: committed.append("sync"))

        async def later():
            committed.append("async")

        tx.after_commit.append(later)
        assert committed == []
    assert committed == ["sync", "async"]

    with pytest.raises(UniqueViolation):
        async with db.transaction() as tx:
            key = uuid.uuid4()
            await tx.execute("INSERT INTO t (id, n) VALUES (%s, 2)", (key,))
            tx.after_commit.append(lambda: committed.append("never"))
            await tx.execute("INSERT INTO t (id, n) VALUES (%s, 3)", (key,))
    assert await db.fetchval("SELECT count(*) FROM t") == 1
    assert committed == ["sync", "async"]


async def test_a_cancelled_transaction_rolls_back_and_frees_its_connection(db):
    started = asyncio.Event()

    async def slow():
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t (id, n) VALUES (%s, 9)", (uuid.uuid4(),))
            started.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(slow())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await db.fetchval("SELECT count(*) FROM t WHERE n = 9") == 0
    assert db.stats()["primary"]["used"] == 0


async def test_isolation_levels(db):
    async with db.transaction("SERIALIZABLE") as tx:
        level = await tx.fetchval("SHOW transaction_isolation")
    assert level == "serializable"
    with pytest.raises(ValueError, match="isolation"):
        async with db.transaction("READ UNCOMMITTED; DROP TABLE t"):
            pass


async def test_the_statement_timeout_cancels_long_queries(migrated):
    database = Database(DatabaseSection(url=migrated.database.url, pool_min=0, pool_max=2,
                                        statement_timeout_ms=100))
    await database.open()
    try:
        with pytest.raises(QueryCanceled):
            await database.fetchval("SELECT pg_sleep(2)")
        assert await database.fetchval("SELECT 1") == 1  # the pool still works
    finally:
        await database.close()


async def test_reads_go_to_the_replica_when_one_is_configured(migrated, db):
    await db.execute("INSERT INTO t (id, n) VALUES (%s, 5)", (uuid.uuid4(),))
    # The same server stands in for a replica: what matters is which pool answers.
    database = Database(DatabaseSection(url=migrated.database.url, pool_min=0, pool_max=2,
                                        replica_url=migrated.database.url))
    await database.open()
    try:
        async with database.connection(replica=True) as conn, conn.cursor() as cur:
            await cur.execute("SELECT n FROM t")
            assert await cur.fetchall() == [(5,)]
        stats = database.stats()
        assert stats["replica"]["size"] == 1 and stats["primary"]["size"] == 0
    finally:
        await database.close()
    # Without a replica, a replica connection is a primary one.
    async with db.connection(replica=True) as conn, conn.cursor() as cur:
        await cur.execute("SELECT n FROM t")
        assert await cur.fetchall() == [(5,)]


async def test_waiters_are_served_first_come_first_served(migrated):
    database = Database(DatabaseSection(url=migrated.database.url, pool_min=0, pool_max=1))
    await database.open()
    order = []
    try:
        async with database.connection():
            async def waiter(n):
                async with database.connection():
                    order.append(n)

            tasks = [asyncio.create_task(waiter(n)) for n in range(5)]
            for _ in range(5):
                await asyncio.sleep(0)
            assert database.stats()["primary"]["waiting"] == 5
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2, 3, 4]
    finally:
        await database.close()


async def test_pool_and_query_metrics_are_exposed(db):
    await db.fetchval("SELECT 1")
    text = render_metrics().decode()
    assert 'propmubi_db_pool_connections{pool="primary",state="max"}' in text
    assert 'propmubi_db_query_duration_seconds_count{kind="fetchval",pool="primary"}' in text
