"""``propmubi dev``: the whole product on one machine, in one process tree.

Starts embedded PostgreSQL and Redis under ``<app.var_dir>`` when no URLs are configured,
applies migrations, seeds demo data, then runs ``serve``, ``worker`` and ``scheduler`` as child
processes.
Ctrl-C or SIGTERM stops the children, then Redis, then PostgreSQL; nothing is left running.
Data is kept between runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import attrs

from propmubi import migrate
from propmubi.config import Config, load_config
from propmubi.embedded import EmbeddedError, EmbeddedPostgres, EmbeddedRedis, die_with_parent
from propmubi.plugins import PluginSet, load_plugins, resolve

__all__ = ["DEV_DATABASE", "DEV_STAFF_EMAIL", "ROLES", "ensure_dev_secrets", "ensure_dev_staff",
           "run_dev"]

DEV_DATABASE = "propmubi"
ROLES = ("serve", "worker", "scheduler")
DEV_SEED_SCALE = 0.02
DEV_STAFF_EMAIL = "admin@propmubi.local"
# Not named "<section>.<key>": the folder is also read as systemd-style credentials.
DEV_STAFF_PASSWORD_FILE = "dev-console-admin-password"


def _say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


async def _seed(config: Config) -> None:
    from propmubi.context import open_services

    plugins = load_plugins(config)
    async with open_services(config, plugins) as services:
        for _, result in plugins.call("propmubi_seed", services=services, scale=DEV_SEED_SCALE):
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
    children: dict[str, subprocess.Popen[bytes]] = {}
    code = 0
    try:
        if not os.environ.get("CREDENTIALS_DIRECTORY"):
            # Generated secrets are read back as credentials, by this process and the children.
            credentials = var / "credentials"
            for name in ensure_dev_secrets(load_plugins(config), credentials):
                _say(f"generated a development secret: {credentials / name}")
            env["CREDENTIALS_DIRECTORY"] = str(credentials)
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
        _stop_children(children, config.http.shutdown_grace + 5)
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()
        _say("stopped")
    return code
