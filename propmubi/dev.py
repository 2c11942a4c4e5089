"""``propmubi dev``: the whole product on one machine, in one process tree.

Starts embedded PostgreSQL and Redis under ``<app.var_dir>`` when no URLs are configured,
applies migrations, seeds demo data, then runs ``serve``, ``worker`` and ``scheduler`` as child
processes.
Ctrl-C or SIGTERM stops the children, then Redis, then PostgreSQL; nothing is left running.
Data is kept between runs.

**The dev file.** Once the schema is current, ``dev`` writes ``<app.var_dir>/dev.toml``
(mode 0600): its pid, the URL and unix socket of each embedded server it started, and the
credentials folder of its generated secrets. Every other ``propmubi`` command run with the
same ``app.var_dir`` (``make dev`` in one shell, ``propmubi users grant ...`` in another, from
the same directory) reads it when ``database.url`` / ``redis.url`` are not configured, says so
in one stderr line, and uses those servers (and those secrets, unless
``CREDENTIALS_DIRECTORY`` is set): see :func:`running_dev_servers`. An explicit URL (config file,
``PROPMUBI_*``, credentials) always wins, key by key; ``app.environment = "production"`` never
reads the file.

The file is removed when ``dev`` stops, before the servers are. A ``dev`` killed with SIGKILL
cannot remove it, so a reader never trusts it alone: the recorded pid must still be a
``propmubi dev`` process and each recorded server socket must accept a connection
(:meth:`DevServers.why_stale`); otherwise the file is ignored, and the next ``dev`` overwrites
it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import attrs

from propmubi import migrate
from propmubi.config import Config, load_config
from propmubi.embedded import (
    PG_PORT,
    EmbeddedError,
    EmbeddedPostgres,
    EmbeddedRedis,
    die_with_parent,
    pid_alive,
)
from propmubi.plugins import PluginSet, load_plugins, resolve

__all__ = ["DEV_DATABASE", "DEV_FILE", "DEV_STAFF_EMAIL", "ROLES", "DevServers",
           "ensure_dev_secrets", "ensure_dev_staff", "read_dev_file", "run_dev",
           "running_dev_servers"]

DEV_DATABASE = "propmubi"
ROLES = ("serve", "worker", "scheduler")
DEV_SEED_SCALE = 0.02
DEV_STAFF_EMAIL = "admin@propmubi.local"
# Not named "<section>.<key>": the folder is also read as systemd-style credentials.
DEV_STAFF_PASSWORD_FILE = "dev-console-admin-password"
#: Under ``app.var_dir``: the servers of the running ``propmubi dev`` (see the module docstring).
DEV_FILE = "dev.toml"
_PROBE_TIMEOUT = 2.0  # seconds a socket may take to accept: the servers are local


@attrs.frozen
class DevServers:
    """What a ``propmubi dev`` wrote to ``<app.var_dir>/dev.toml``.

    :ivar pid: the ``dev`` process.
    :ivar database_url: of the embedded PostgreSQL ("" when ``dev`` was given a URL).
    :ivar postgres_socket: its unix socket file ("" likewise).
    :ivar redis_url: of the embedded Redis ("" when ``dev`` was given a URL).
    :ivar redis_socket: its unix socket file ("" likewise).
    :ivar credentials: the ``CREDENTIALS_DIRECTORY`` of its generated secrets ("" when ``dev``
        was started with one of its own).
    """

    path: Path
    pid: int = attrs.field(converter=int)
    database_url: str = ""
    postgres_socket: str = ""
    redis_url: str = ""
    redis_socket: str = ""
    credentials: str = ""

    def why_stale(self) -> str | None:
        """Why these servers cannot be used (``dev`` is gone, a server does not accept
        connections); None when they are running."""
        if not _is_dev_process(self.pid):
            return f"pid {self.pid} is not a running propmubi dev"
        for name, path in (("PostgreSQL", self.postgres_socket), ("Redis", self.redis_socket)):
            if path and not _accepts(path):
                return f"its {name} does not accept connections on {path}"
        return None


def _is_dev_process(pid: int) -> bool:
    """Whether ``pid`` runs ``propmubi ... dev`` (a stale file's pid may have been reused)."""
    if pid <= 0:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self").exists():
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            return False
        return any(b"propmubi" in a for a in args) and b"dev" in args
    return pid_alive(pid)  # no procfs: trust the pid


def _accepts(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(_PROBE_TIMEOUT)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def read_dev_file(var_dir: str | Path) -> DevServers | None:
    """The dev file under ``var_dir`` as written, or None when there is none (or it is not one
    of ours: unreadable, malformed). Says nothing about whether the servers still run."""
    path = Path(var_dir) / DEV_FILE
    try:
        data = tomllib.loads(path.read_text())
        fields = {f.name for f in attrs.fields(DevServers)} - {"path"}
        return DevServers(path=path, **{k: v for k, v in data.items() if k in fields})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, TypeError, ValueError):
        return None


def running_dev_servers(var_dir: str | Path) -> tuple[DevServers | None, str | None]:
    """The servers of the ``propmubi dev`` running on ``var_dir``: ``(servers, None)``;
    ``(None, why)`` when a dev file is there but stale; ``(None, None)`` when there is none."""
    servers = read_dev_file(var_dir)
    if servers is None:
        return None, None
    why = servers.why_stale()
    return (None, why) if why else (servers, None)


def _write_dev_file(var: Path, postgres: EmbeddedPostgres | None, redis: EmbeddedRedis | None,
                    database_url: str, redis_url: str, credentials: str) -> Path:
    """Write the dev file atomically, private from its first byte."""
    values: dict[str, object] = {"pid": os.getpid(), "credentials": credentials}
    if postgres is not None:
        values["database_url"] = database_url
        values["postgres_socket"] = str(postgres.socket_dir / f".s.PGSQL.{PG_PORT}")
    if redis is not None:
        values["redis_url"] = redis_url
        values["redis_socket"] = str(redis.socket)
    lines = ["# Written by `propmubi dev` while it runs, removed when it stops (see "
             "propmubi/dev.py).",
             "# Other propmubi commands with this var dir use these servers when database.url "
             "/ redis.url are unset."]
    # A JSON string is a valid TOML basic string.
    lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path = var / DEV_FILE
    partial = path.with_name(f".{DEV_FILE}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(partial, path)
    return path


def _remove_dev_file(path: Path) -> None:
    """Remove the dev file if it is still ours (another dev may have replaced it)."""
    servers = read_dev_file(path.parent)
    if servers is not None and servers.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


async def _seed(config: Config) -> None:
    from propmubi.lifecycle import open_services

    plugins = load_plugins(config)
    async with open_services(config, plugins) as services:
        for _, result in plugins.call("propmubi_seed", contexts=services.contexts,
                                      scale=DEV_SEED_SCALE):
            await resolve(result)


def ensure_dev_secrets(plugins: PluginSet, folder: Path) -> list[str]:
    """Write a random value for every empty plugin setting marked with
    :func:`propmubi.config.dev_secret` that has no file in ``folder`` yet; return the names of
    the files written. Existing files are kept, so secrets survive between runs."""
    created = []
    for plugin in plugins:
        settings_class = getattr(plugin.obj, "propmubi_settings_class", lambda: None)()
        if settings_class is None:
            continue
        for field in attrs.fields(settings_class):
            generate = field.metadata.get("generate")
            if generate is None or getattr(plugin.settings, field.name, None):
                continue
            path = folder / f"plugins.{plugin.name}.{field.name}"
            if path.exists():
                continue
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(generate())
            created.append(path.name)
    return created


def _save_password(path: Path, password: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.touch(mode=0o600)  # created private, before the secret is in it
    path.write_text(password + "\n")


async def ensure_dev_staff(config: Config, folder: Path) -> str:
    """Create the development console account (an admin) on the first run, saving its
    generated password in ``folder`` (mode 0600); return what to tell the developer."""
    from propmubi.console import accounts, store
    from propmubi.db import Database

    path = folder / DEV_STAFF_PASSWORD_FILE
    db = Database(config.database)
    await db.open()
    try:
        if await store.by_email(db, DEV_STAFF_EMAIL) is not None:
            saved = await asyncio.to_thread(path.exists)
            where = (f"password in {path}" if saved else
                     f"reset its password with `propmubi staff set-password --email "
                     f"{DEV_STAFF_EMAIL}`")
            return f"console sign-in: {DEV_STAFF_EMAIL}; {where}"
        password = accounts.generate_password()
        await accounts.create_staff(db, DEV_STAFF_EMAIL, "Development admin", password,
                                    ["admin"])
    finally:
        await db.close()
    await asyncio.to_thread(_save_password, path, password)
    return (f"created console account {DEV_STAFF_EMAIL} with password {password} "
            f"(saved in {path})")


def _spawn(role: str, env: dict[str, str], config_path: str | None) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "propmubi"]
    if config_path:
        args += ["--config", config_path]
    return subprocess.Popen([*args, role], env=env, start_new_session=True,
                            preexec_fn=die_with_parent(signal.SIGTERM))


def _stop_children(children: dict[str, subprocess.Popen[bytes]], grace: float) -> None:
    for proc in children.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in children.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_dev(config: Config, config_path: str | None, *, port: int | None = None,
            seed: bool = True) -> int:
    """Run the dev process tree until interrupted; return the exit code."""
    var = Path(config.app.var_dir).resolve()
    var.mkdir(parents=True, exist_ok=True)
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    env = dict(os.environ)
    # A `dev` run under systemd is the unit's main process; its children must not speak
    # for it to the notify socket or the watchdog.
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(name, None)
    postgres = redis = None
    dev_file: Path | None = None
    credentials_dir = ""
    children: dict[str, subprocess.Popen[bytes]] = {}
    code = 0
    try:
        if not os.environ.get("CREDENTIALS_DIRECTORY"):
            # Generated secrets are read back as credentials, by this process and the children.
            credentials = var / "credentials"
            for name in ensure_dev_secrets(load_plugins(config), credentials):
                _say(f"generated a development secret: {credentials / name}")
            env["CREDENTIALS_DIRECTORY"] = credentials_dir = str(credentials)
            config = load_config(config_path, environ=env)
        overrides: dict[str, dict[str, object]] = {}
        if not config.database.url:
            postgres = EmbeddedPostgres(var / "postgres")
            _say(f"starting embedded PostgreSQL in {postgres.data_dir}")
            postgres.start()
            url = postgres.createdb(DEV_DATABASE)
            overrides["database"] = {"url": url}
            env["PROPMUBI_DATABASE__URL"] = url
        if not config.redis.url:
            redis = EmbeddedRedis(var / "redis", persistent=True)
            _say(f"starting embedded Redis in {redis.data_dir}")
            url = redis.start()
            overrides["redis"] = {"url": url}
            env["PROPMUBI_REDIS__URL"] = url
        if port is not None:
            overrides["http"] = {"port": port}
            env["PROPMUBI_HTTP__PORT"] = str(port)
        config = config.evolve(**overrides) if overrides else config
        plugins = load_plugins(config)
        applied = asyncio.run(migrate.up(config.database.url, plugins))
        _say(f"schema current ({len(applied)} migration(s) applied now)")
        if postgres is not None or redis is not None:
            dev_file = _write_dev_file(var, postgres, redis, config.database.url,
                                       config.redis.url, credentials_dir)
        if not stopping:
            _say(asyncio.run(ensure_dev_staff(config, var / "credentials")))
        if seed and not stopping:
            asyncio.run(_seed(config))
        for role in ROLES:
            if not stopping:
                children[role] = _spawn(role, env, config_path)
        base = f"http://{config.http.host}:{config.http.port}"
        _say("running; Ctrl-C stops everything")
        _say(f"  console    {base}/console/")
        _say(f"  API        {base}/api/v1/openapi.json")
        _say(f"  health     {base}/health   ready {base}/ready   metrics {base}/metrics")
        _say(f"  database   {config.database.url}")
        _say(f"  redis      {config.redis.url}")
        if dev_file is not None:
            _say(f"  other propmubi commands run from here use these servers ({dev_file})")
        while not stopping:
            for role, proc in children.items():
                if proc.poll() is not None:
                    _say(f"{role} exited with {proc.returncode}; stopping everything")
                    stopping, code = True, 1
            time.sleep(0.2)
    except EmbeddedError as exc:
        _say(f"error: {exc}")
        code = 1
    finally:
        _say("stopping")
        if dev_file is not None:
            _remove_dev_file(dev_file)  # first: no command may start on servers going away
        _stop_children(children, config.http.shutdown_grace + 5)
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()
        _say("stopped")
    return code
