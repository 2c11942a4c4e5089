"""The SQL migrations runner: order, one transaction per file, the lock, checksum drift, down.

Most tests start from an empty database and plugins whose migration folders live in tmp_path,
so that what they see is only what the test wrote (plus the core's own migrations).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import sys
import textwrap
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import propmubi
import tests.refplugin
from propmubi import hookimpl, migrate, testing
from propmubi.app import create_app
from propmubi.config import Config
from propmubi.db import connect_once
from propmubi.migrate import MigrationError
from propmubi.plugins import PluginSet, load_plugins
from propmubi.roles import SchemaBehind, check_schema
from propmubi.testing import create_database, drop_database, make_config
from propmubi.types import PluginInfo

ROOT = Path(propmubi.__file__).resolve().parent.parent
NO_TX = "-- propmubi: no-transaction\n"


def make_plugin(name: str, folder: Path, requires: tuple[str, ...] = ()) -> types.ModuleType:
    """A plugin object with only the two hooks the runner calls."""
    module = types.ModuleType(f"migtest_{name}")
    module.propmubi_plugin_info = hookimpl(  # type: ignore[attr-defined]
        lambda: PluginInfo(name=name, requires=requires))
    module.propmubi_migrations = hookimpl(lambda: folder)  # type: ignore[attr-defined]
    return module


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(textwrap.dedent(sql))
    return folder


def log_sql(what: str) -> str:
    """SQL that records, in order, that ``what`` ran (the first plugin creates the table)."""
    return f"INSERT INTO migtest_log (what) VALUES ('{what}');\n"


CREATE_LOG = "CREATE TABLE migtest_log (id bigserial PRIMARY KEY, what text NOT NULL);\n"


async def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = await connect_once(url)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql, params or None)
            return list(await cur.fetchall())
    finally:
        await conn.close()


async def ran(url: str) -> list[str]:
    return [r[0] for r in await query(url, "SELECT what FROM migtest_log ORDER BY id")]


async def recorded(url: str, plugin: str) -> list[int]:
    rows = await query(url, "SELECT version FROM schema_migrations WHERE plugin = %s "
                            "ORDER BY version", (plugin,))
    return [r[0] for r in rows]


async def exists(url: str, relation: str) -> bool:
    return (await query(url, "SELECT to_regclass(%s) IS NOT NULL", (relation,)))[0][0]


@pytest.fixture
def empty_url(test_servers: testing.TestServers) -> Iterator[str]:
    """A database with nothing in it, not even schema_migrations."""
    name = f"propmubi_mig_{uuid.uuid4().hex[:12]}"
    url = create_database(test_servers, name)
    yield url
    drop_database(test_servers, name)


def config_on(servers: testing.TestServers, url: str, *names: str) -> Config:
    # Only the test's plugins (and the core): installed domain plugins stay out of the way.
    return make_config(url, servers.redis_url, "migtest:", plugins={"enabled": list(names)})


@pytest.fixture
def load(test_servers: testing.TestServers) -> Callable[..., PluginSet]:
    def build(*plugins: types.ModuleType) -> PluginSet:
        names = [p.propmubi_plugin_info().name for p in plugins]
        # Loading plugins reads no database: the URL only fills the field.
        return load_plugins(config_on(test_servers, test_servers.database_url, *names),
                            extra=plugins)

    return build


# --- order and bookkeeping --------------------------------------------------------------------


async def test_core_first_then_requires_order_then_versions(tmp_path, empty_url, load):
    # "aaa" sorts first but requires "zzz", so it must apply after it.
    zzz = make_plugin("zzz", write(tmp_path / "zzz", {
        "0002_second.sql": log_sql("zzz/2"),
        "0001_first.sql": CREATE_LOG + log_sql("zzz/1"),
        "0010_tenth.sql": log_sql("zzz/10"),
        "0001_first.down.sql": "DROP TABLE migtest_log;",
        "README.md": "not a migration", "__init__.py": "",
    }))
    aaa = make_plugin("aaa", write(tmp_path / "aaa", {
        "0001_one.sql": log_sql("aaa/1"),
        "0003_three.sql": log_sql("aaa/3"),
    }), requires=("zzz",))
    plugins = load(aaa, zzz)

    files = migrate.migrations_for(plugins)
    owners = [m.plugin for m in files]
    rank = {"core": 0, "zzz": 1, "aaa": 2}
    assert owners == sorted(owners, key=rank.__getitem__)
    assert [m.label for m in files if m.plugin != "core"] == [
        "zzz/0001_first.sql", "zzz/0002_second.sql", "zzz/0010_tenth.sql",
        "aaa/0001_one.sql", "aaa/0003_three.sql"]
    assert files[owners.index("zzz")].down_path == tmp_path / "zzz" / "0001_first.down.sql"
    assert all(m.down_path is None for m in files if m.plugin == "aaa")

    applied = await migrate.up(empty_url, plugins)
    assert [m.label for m in applied] == [m.label for m in files]
    assert await ran(empty_url) == ["zzz/1", "zzz/2", "zzz/10", "aaa/1", "aaa/3"]

    rows = await query(empty_url, "SELECT plugin, version, name, checksum, applied_at IS NOT NULL"
                                  " FROM schema_migrations WHERE plugin IN ('aaa', 'zzz')"
                                  " ORDER BY plugin, version")
    assert rows == [(m.plugin, m.version, m.name, hashlib.sha256(m.path.read_bytes()).hexdigest(),
                     True) for m in sorted(files[owners.index("zzz"):], key=lambda m: m.label)]

    # A second run has nothing to do and runs nothing twice.
    assert await migrate.up(empty_url, plugins) == []
    assert len(await ran(empty_url)) == 5
    state = await migrate.status(empty_url, plugins)
    assert state.current and not state.pending and not state.changed
    assert {(r["plugin"], r["version"]) for r in state.applied} >= {("aaa", 1), ("zzz", 10)}


async def test_status_is_read_only_and_sql_is_sent_as_written(tmp_path, empty_url, load):
    plugins = load(make_plugin("p", write(tmp_path / "p", {
        "0001_a.sql": "CREATE TABLE p_t (v text);\nINSERT INTO p_t VALUES ('100%s %(x)s');",
    })))
    state = await migrate.status(empty_url, plugins)
    assert state.applied == [] and not state.current
    assert state.pending == migrate.migrations_for(plugins)
    assert not await exists(empty_url, "schema_migrations")
    # No parameters are passed, so `%` is no placeholder.
    await migrate.up(empty_url, plugins)
    assert await query(empty_url, "SELECT v FROM p_t") == [("100%s %(x)s",)]


# --- one transaction per file -----------------------------------------------------------------


async def test_a_failing_file_leaves_no_trace_and_names_itself(tmp_path, empty_url, load):
    folder = write(tmp_path / "p", {
        "0001_a.sql": "CREATE TABLE p_a (id int);",
        "0002_b.sql": "CREATE TABLE p_b (id int);\nINSERT INTO p_a VALUES (1);\nSELECT 1/0;",
        "0003_c.sql": "CREATE TABLE p_c (id int);",
    })
    plugins = load(make_plugin("p", folder))
    with pytest.raises(MigrationError, match=r"p/0002_b\.sql failed: division by zero"):
        await migrate.up(empty_url, plugins)
    assert await exists(empty_url, "p_a")
    assert await query(empty_url, "SELECT count(*) FROM p_a") == [(0,)]
    assert not await exists(empty_url, "p_b")
    assert not await exists(empty_url, "p_c")
    assert await recorded(empty_url, "p") == [1]

    # The file was never applied, so fixing it is allowed; the next run carries on from it
    # (and finds the lock free at once: the failed run released it).
    write(folder, {"0002_b.sql": "CREATE TABLE p_b (id int);"})
    applied = await migrate.up(empty_url, plugins, lock_wait=0)
    assert [m.label for m in applied] == ["p/0002_b.sql", "p/0003_c.sql"]
    assert await exists(empty_url, "p_b") and await exists(empty_url, "p_c")
    assert await recorded(empty_url, "p") == [1, 2, 3]


@pytest.mark.parametrize(("sql", "error"), [
    # A deferred constraint is only checked at COMMIT.
    ("CREATE TABLE p_parent (id int PRIMARY KEY);\n"
     "CREATE TABLE p_t (parent int REFERENCES p_parent DEFERRABLE INITIALLY DEFERRED);\n"
     "INSERT INTO p_t VALUES (42);", "foreign key"),
    # aiopg reports a server-side cancel as asyncio.CancelledError, not as a database error.
    ("SET LOCAL statement_timeout = '20ms';\nCREATE TABLE p_t (id int);\nSELECT pg_sleep(5);",
     "statement timeout"),
], ids=["at-commit", "statement-timeout"])
async def test_any_failure_rolls_back_and_names_the_file(tmp_path, empty_url, load, sql, error):
    plugins = load(make_plugin("p", write(tmp_path / "p", {"0001_a.sql": sql})))
    with pytest.raises(MigrationError, match=rf"p/0001_a\.sql failed: .*{error}"):
        await migrate.up(empty_url, plugins)
    assert not await exists(empty_url, "p_t")
    assert await recorded(empty_url, "p") == []


async def test_a_statement_outlasting_the_client_wait_names_the_file(tmp_path, empty_url, load,
                                                                      monkeypatch):
    folder = write(tmp_path / "p", {"0001_first.sql": "SELECT 1;"})
    plugins = load(make_plugin("p", folder))
    await migrate.up(empty_url, plugins)  # so that only the slow file comes near the limit
    write(folder, {"0002_slow.sql": "CREATE TABLE p_slow (id int);\nSELECT pg_sleep(2);"})
    monkeypatch.setattr(migrate, "STATEMENT_WAIT", 0.5)
    with pytest.raises(MigrationError, match=r"p/0002_slow\.sql was still running"):
        await migrate.up(empty_url, plugins)
    monkeypatch.undo()
    # The abandoned session keeps the lock until the server notices the client is gone (after
    # the sleep); the next runner waits for it, and the abandoned transaction was rolled back.
    write(folder, {"0002_slow.sql": "CREATE TABLE p_slow (id int);"})
    assert [m.label for m in await migrate.up(empty_url, plugins)] == ["p/0002_slow.sql"]
    assert await recorded(empty_url, "p") == [1, 2]


async def test_no_transaction_files_run_statement_by_statement(tmp_path, empty_url, load):
    indexes = """
        -- a comment; with a semicolon
        CREATE INDEX CONCURRENTLY p_t_a ON p_t (a);
        COMMENT ON INDEX p_t_a IS 'why; because ''quoted''';
        /* block; comment */
        DO $body$ BEGIN PERFORM 1; PERFORM 2; END $body$;
        DO $$ BEGIN PERFORM 'x;y'; END $$;
        CREATE INDEX CONCURRENTLY "p_t;b" ON p_t (b)
    """
    folder = write(tmp_path / "p", {"0001_table.sql": "CREATE TABLE p_t (a int, b int);",
                                    "0002_indexes.sql": indexes})
    plugins = load(make_plugin("p", folder))
    with pytest.raises(MigrationError, match=r"p/0002_indexes\.sql failed: .*transaction block"):
        await migrate.up(empty_url, plugins)

    write(folder, {"0002_indexes.sql": NO_TX + textwrap.dedent(indexes)})
    assert [m.label for m in await migrate.up(empty_url, plugins)] == ["p/0002_indexes.sql"]
    found = await query(empty_url, "SELECT c.relname, i.indisvalid FROM pg_index i "
                                   "JOIN pg_class c ON c.oid = i.indexrelid "
                                   "WHERE i.indrelid = 'p_t'::regclass ORDER BY 1")
    assert found == [("p_t;b", True), ("p_t_a", True)]
    assert await query(empty_url, "SELECT obj_description('p_t_a'::regclass)") == [
        ("why; because 'quoted'",)]
    assert await recorded(empty_url, "p") == [1, 2]


def test_statement_splitter():
    split = migrate._statements
    assert split("") == []
    assert split("-- only a comment\n;\n  ;") == []
    assert split("SELECT 1; SELECT ';'") == ["SELECT 1;", " SELECT ';'"]
    assert split('SELECT "a;b" FROM t;') == ['SELECT "a;b" FROM t;']
    assert split("SELECT $f$;$f$; SELECT $$;$$") == ["SELECT $f$;$f$;", " SELECT $$;$$"]
    assert split("SELECT $1; SELECT $2") == ["SELECT $1;", " SELECT $2"]
    assert split("/* ; */ SELECT 1 -- ;\n; SELECT 'it''s;'") == [
        "/* ; */ SELECT 1 -- ;\n;", " SELECT 'it''s;'"]


# --- the lock ---------------------------------------------------------------------------------


async def test_two_concurrent_runners_apply_each_file_once(tmp_path, empty_url, load):
    plugins = load(make_plugin("p", write(tmp_path / "p", {
        "0001_a.sql": CREATE_LOG + log_sql("1"),
        "0002_slow.sql": "SELECT pg_sleep(0.5);\n" + log_sql("2"),
        "0003_c.sql": log_sql("3"),
    })))
    first, second = await asyncio.gather(migrate.up(empty_url, plugins),
                                         migrate.up(empty_url, plugins))
    # Whoever took the lock first applied everything; the other found nothing left to do.
    total = len(migrate.migrations_for(plugins))
    assert sorted([len(first), len(second)]) == [0, total]
    assert await ran(empty_url) == ["1", "2", "3"]
    assert await recorded(empty_url, "p") == [1, 2, 3]


async def test_a_runner_gives_up_when_the_lock_stays_taken(tmp_path, empty_url, load):
    plugins = load(make_plugin("p", write(tmp_path / "p", {"0001_a.sql": "SELECT 1;"})))
    holder = await connect_once(empty_url)
    try:
        async with holder.cursor() as cur:
            await cur.execute("SELECT pg_advisory_lock(%s)", (migrate.LOCK_KEY,))
            with pytest.raises(MigrationError, match="another migration runner held the lock"):
                await migrate.up(empty_url, plugins, lock_wait=0)
            assert not await exists(empty_url, "schema_migrations")
            # Unlocked explicitly: a closed session lets go of it only asynchronously.
            await cur.execute("SELECT pg_advisory_unlock(%s)", (migrate.LOCK_KEY,))
    finally:
        await holder.close()
    assert len(await migrate.up(empty_url, plugins, lock_wait=0)) >= 1


# --- checksum drift ---------------------------------------------------------------------------


async def test_check_schema_and_a_changed_file(tmp_path, empty_url, load, test_servers):
    folder = write(tmp_path / "p", {"0001_a.sql": CREATE_LOG + log_sql("1")})
    plugins = load(make_plugin("p", folder))
    config = config_on(test_servers, empty_url, "p")
    with pytest.raises(SchemaBehind, match=r"p/0001_a\.sql.*run `propmubi migrate up`"):
        await check_schema(config, plugins)
    await migrate.up(empty_url, plugins)
    await check_schema(config, plugins)
    original = (folder / "0001_a.sql").read_text()
    (folder / "0001_a.sql").write_text(original + "-- an innocent-looking edit\n")
    write(folder, {"0002_b.sql": log_sql("2")})

    with pytest.raises(MigrationError, match=r"p/0001_a\.sql changed after being applied"):
        await migrate.up(empty_url, plugins)
    assert await ran(empty_url) == ["1"]
    assert await recorded(empty_url, "p") == [1]

    state = await migrate.status(empty_url, plugins)
    assert [m.label for m in state.changed] == ["p/0001_a.sql"]
    assert [m.label for m in state.pending] == ["p/0002_b.sql"]
    assert not state.current
    with pytest.raises(SchemaBehind, match=r"p/0001_a\.sql changed"):
        await check_schema(config, plugins)

    (folder / "0001_a.sql").write_text(original)
    assert [m.label for m in await migrate.up(empty_url, plugins)] == ["p/0002_b.sql"]
    assert (await migrate.status(empty_url, plugins)).current
    await check_schema(config, plugins)


# --- down -------------------------------------------------------------------------------------


def three_with_downs(folder: Path) -> Path:
    return write(folder, {
        "0001_a.sql": CREATE_LOG + "CREATE TABLE p_a (id int);",
        "0001_a.down.sql": "DROP TABLE p_a;\nDROP TABLE migtest_log;",
        "0002_b.sql": "CREATE TABLE p_b (id int);",
        "0002_b.down.sql": "DROP TABLE p_b;\n" + log_sql("down 2"),
        "0003_c.sql": "CREATE TABLE p_c (id int);",
        "0003_c.down.sql": "DROP TABLE p_c;\n" + log_sql("down 3"),
    })


async def test_down_runs_down_files_newest_first(tmp_path, empty_url, load):
    q = make_plugin("q", write(tmp_path / "q", {"0001_q.sql": "CREATE TABLE q_t (id int);",
                                                "0001_q.down.sql": "DROP TABLE q_t;"}))
    plugins = load(make_plugin("p", three_with_downs(tmp_path / "p")), q)
    await migrate.up(empty_url, plugins)

    undone = await migrate.down(empty_url, plugins, "p", 1)
    assert [m.label for m in undone] == ["p/0003_c.sql", "p/0002_b.sql"]
    assert await ran(empty_url) == ["down 3", "down 2"]
    assert await recorded(empty_url, "p") == [1]
    assert await exists(empty_url, "p_a")
    assert not await exists(empty_url, "p_b") and not await exists(empty_url, "p_c")

    assert await migrate.down(empty_url, plugins, "p", 1) == []
    assert [m.label for m in await migrate.down(empty_url, plugins, "p", 0)] == [
        "p/0001_a.sql"]
    assert await recorded(empty_url, "p") == []
    assert not await exists(empty_url, "p_a")
    assert await recorded(empty_url, "q") == [1]  # only the named plugin rolled back
    # Rolled back files are pending again, and apply again.
    assert len((await migrate.status(empty_url, plugins)).pending) == 3
    assert len(await migrate.up(empty_url, plugins)) == 3


async def test_down_refuses_and_changes_nothing(tmp_path, empty_url, load):
    folder = three_with_downs(tmp_path / "p")
    (folder / "0002_b.down.sql").unlink()
    plugins = load(make_plugin("p", folder))
    await migrate.up(empty_url, plugins)
    with pytest.raises(MigrationError, match="'nope' is not enabled"):
        await migrate.down(empty_url, plugins, "nope", 0)
    with pytest.raises(MigrationError, match=r"p/0002_b\.down\.sql does not exist"):
        await migrate.down(empty_url, plugins, "p", 0)
    # 0003 could have been rolled back, but a half-done rollback is worse than none.
    assert await recorded(empty_url, "p") == [1, 2, 3]
    assert await exists(empty_url, "p_c")
    assert await ran(empty_url) == []

    (folder / "0003_c.sql").unlink()
    (folder / "0003_c.down.sql").unlink()
    with pytest.raises(MigrationError, match=r"p/0003_c\.sql is applied but its file is gone"):
        await migrate.down(empty_url, plugins, "p", 0)
    assert await recorded(empty_url, "p") == [1, 2, 3]


async def test_a_failing_down_file_names_itself(tmp_path, empty_url, load):
    folder = three_with_downs(tmp_path / "p")
    write(folder, {"0002_b.down.sql": "DROP TABLE p_b;\nDROP TABLE p_nothing;"})
    plugins = load(make_plugin("p", folder))
    await migrate.up(empty_url, plugins)
    with pytest.raises(MigrationError, match=r"p/0002_b\.down\.sql failed: .*p_nothing"):
        await migrate.down(empty_url, plugins, "p", 0)
    # 0003 was rolled back before 0002 failed; 0002 is intact.
    assert await recorded(empty_url, "p") == [1, 2]
    assert await exists(empty_url, "p_b") and not await exists(empty_url, "p_c")


# --- file names -------------------------------------------------------------------------------


@pytest.mark.parametrize(("files", "message"), [
    *[({name: "SELECT 1;"}, rf"p/{re.escape(name)}: expected a name like 0001_what\.sql")
      for name in ["1_short.sql", "0001-dash.sql", "0001_Upper.sql", "notes.sql",
                   "00001_five.sql", "0001_.sql"]],
    ({"0001_b.sql": "SELECT 2;"},
     r"p: two migrations have version 1: 0001_a\.sql and 0001_b\.sql"),
    ({"0001_typo.down.sql": "SELECT 2;"}, r"p/0001_typo\.down\.sql: no 0001_typo\.sql"),
    (None, r"p: migrations folder .*p does not exist"),
])
def test_folders_the_runner_refuses(tmp_path, load, files, message):
    folder = tmp_path / "p"
    if files is not None:
        write(folder, {"0001_a.sql": "SELECT 1;", **files})
    plugins = load(make_plugin("p", folder))
    with pytest.raises(MigrationError, match=message):
        migrate.migrations_for(plugins)


async def test_a_refused_folder_applies_nothing(tmp_path, empty_url, load):
    plugins = load(make_plugin("p", write(tmp_path / "p", {"0001_a.sql": "SELECT 1;",
                                                             "0002_B.sql": "SELECT 2;"})))
    with pytest.raises(MigrationError, match=r"p/0002_B\.sql: expected a name"):
        await migrate.up(empty_url, plugins)
    assert not await exists(empty_url, "schema_migrations")


# --- /ready -----------------------------------------------------------------------------------


async def test_ready_reports_pending_and_changed_migrations(tmp_path, config, aiohttp_client):
    # The test database is a clone of the migrated template; this plugin is not in it.
    folder = write(tmp_path / "late", {"0001_late.sql": "CREATE TABLE late_t (id int);"})
    plugins = load_plugins(config, extra=[tests.refplugin, make_plugin("late", folder)])
    client = await aiohttp_client(create_app(config, plugins))

    resp = await client.get("/ready")
    body = await resp.json()
    assert resp.status == 503, body
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    detail = body["checks"]["migrations"]["detail"]
    assert not body["checks"]["migrations"]["ok"]
    assert "1 pending: late/0001_late.sql" in detail
    assert "propmubi migrate up" in detail

    await migrate.up(config.database.url, plugins)
    status, body = await ready_until(client, 200)
    assert status == 200, body

    (folder / "0001_late.sql").write_text("CREATE TABLE late_t (id bigint);")
    status, body = await ready_until(client, 503)
    assert status == 503, body
    assert "late/0001_late.sql" in body["checks"]["migrations"]["detail"]


async def ready_until(client, wanted: int, within: float = 15.0) -> tuple[int, dict]:
    """``/ready`` until it answers ``wanted`` (its checks are reused for a second, so a change
    shows on a later round), or the last answer once ``within`` seconds have passed."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        resp = await client.get("/ready")
        body = await resp.json()
        if resp.status == wanted or asyncio.get_running_loop().time() > deadline:
            return resp.status, body
        await asyncio.sleep(0.2)


# --- the command line -------------------------------------------------------------------------


CLI_PLUGIN = """
from pathlib import Path
from propmubi import hookimpl
from propmubi.types import PluginInfo
propmubi_plugin_info = hookimpl(lambda: PluginInfo(name="clitest"))
propmubi_migrations = hookimpl(lambda: Path(__file__).parent / "clitest_migrations")
"""


@pytest.fixture
def cli(tmp_path: Path, test_servers: testing.TestServers, empty_url: str
        ) -> Callable[..., subprocess.Popen[str]]:
    """Start ``propmubi <args>`` on the empty database with the ``clitest`` plugin."""
    (tmp_path / "clitest_plugin.py").write_text(CLI_PLUGIN)
    write(tmp_path / "clitest_migrations", {
        "0001_a.sql": "CREATE TABLE clitest_log (id bigserial PRIMARY KEY, what text);\n"
                      "INSERT INTO clitest_log (what) VALUES ('1');",
        "0001_a.down.sql": "DROP TABLE clitest_log;",
        "0002_slow.sql": "SELECT pg_sleep(0.5);\nINSERT INTO clitest_log (what) VALUES ('2');",
        "0002_slow.down.sql": "DELETE FROM clitest_log WHERE what = '2';",
    })
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROPMUBI_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]),
        PROPMUBI_DATABASE__URL=empty_url,
        PROPMUBI_REDIS__URL=test_servers.redis_url,
        PROPMUBI_PLUGINS__MODULES="clitest_plugin",
        PROPMUBI_PLUGINS__ENABLED="clitest",
    )

    def start(*args: str) -> subprocess.Popen[str]:
        # cwd=tmp_path: no ./propmubi.toml is read.
        return subprocess.Popen([sys.executable, "-m", "propmubi", *args], cwd=tmp_path,
                                env=env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    return start


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{proc.args} did not finish: {out}\n{err}")
    return proc.returncode, out, err


async def test_cli_two_processes_migrating_at_once(cli, empty_url):
    first, second = cli("migrate", "up"), cli("migrate", "up")
    results = [await asyncio.to_thread(finish, proc) for proc in (first, second)]
    for code, out, err in results:
        assert code == 0, (out, err)
    counts = sorted(out.count("applied  clitest/") for _, out, _ in results)
    assert counts == [0, 2], results
    assert await query(empty_url, "SELECT what FROM clitest_log ORDER BY id") == [("1",), ("2",)]
    assert await recorded(empty_url, "clitest") == [1, 2]


async def test_cli_status_and_down(cli, empty_url, tmp_path, load):
    code, out, err = await asyncio.to_thread(finish, cli("migrate", "status"))
    assert code == 1, (out, err)
    assert "pending  clitest/0001_a.sql" in out and "pending  clitest/0002_slow.sql" in out

    # Each process costs seconds on a busy machine: `up` runs in-process here (the CLI's `up`
    # is covered above).
    plugins = load(make_plugin("clitest", tmp_path / "clitest_migrations"))
    await migrate.up(empty_url, plugins)
    code, out, err = await asyncio.to_thread(finish, cli("migrate", "status"))
    assert code == 0, (out, err)
    assert "applied  clitest/0002_slow.sql" in out and "pending" not in out

    code, out, err = await asyncio.to_thread(
        finish, cli("migrate", "down", "--to", "0", "--plugin", "clitest"))
    assert code == 0, (out, err)
    assert out.index("rolled back  clitest/0002_slow.sql") < out.index(
        "rolled back  clitest/0001_a.sql")
    assert "clitest is at version 0" in out
    assert await recorded(empty_url, "clitest") == []
    assert not await exists(empty_url, "clitest_log")
    assert len((await migrate.status(empty_url, plugins)).pending) == 2
