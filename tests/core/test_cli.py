"""The ``propmubi`` command, run as operators run it: a separate process with its own env.

Error paths that end before logging is configured are also run through ``main()`` in this process,
which is much cheaper than a process start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import attrs
import pytest

from propmubi.cli import main
from propmubi.config import Config

ROOT = Path(__file__).parents[2]

# (arguments, extra environment, TOML text for --config or None)
Call = tuple[tuple[str, ...], dict[str, str], str | None]


@attrs.frozen
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The process's cwd: empty, so no ./propmubi.toml is picked up unless a test writes one."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def _start(workdir: Path, args: tuple[str, ...], env: dict[str, str],
           toml: str | None) -> subprocess.Popen[str]:
    # A clean environment: no PROPMUBI_* variable from the developer's shell leaks in.
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
               "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT), **env}
    if toml is not None:
        fd, name = tempfile.mkstemp(suffix=".toml", dir=workdir)
        os.write(fd, toml.encode())
        os.close(fd)
        args = ("--config", name, *args)
    return subprocess.Popen([sys.executable, "-m", "propmubi", *args], cwd=workdir, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def propmubi_all(workdir: Path, calls: list[Call]) -> list[Result]:
    """Run several ``python -m propmubi`` at once: start-up dominates and they share nothing."""
    procs = [_start(workdir, args, env, toml) for args, env, toml in calls]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append(Result(proc.returncode, out, err))
    return results


def propmubi(workdir: Path, *args: str, env: dict[str, str] | None = None,
             toml: str | None = None) -> Result:
    return propmubi_all(workdir, [(args, env or {}, toml)])[0]


def assert_config_error(result: Result, *words: str) -> None:
    assert result.code == 2, result
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("propmubi: configuration error: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])


def main_in_process(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str], *args: str,
                    env: dict[str, str] | None = None, toml: str | None = None) -> Result:
    """``main()`` in this process: only for paths that end before logging is configured."""
    for name in list(os.environ):
        if name.startswith("PROPMUBI_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(workdir)
    if toml is not None:
        (workdir / "given.toml").write_text(toml)
        args = ("--config", str(workdir / "given.toml"), *args)
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse: --help, usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return Result(code, out, err)


# -------------------------------------------------------------------------------------------------
# Configuration errors: exit 2, one line naming the key, no traceback
# -------------------------------------------------------------------------------------------------


def test_bad_config_exits_2_with_one_line(workdir: Path) -> None:
    env_error, toml_error, plugin_error, missing = propmubi_all(workdir, [
        (("check",), {"PROPMUBI_HTTP__PORT": "eighty"}, None),
        (("check",), {}, "[http]\nport = 70000\n"),
        (("check",), {}, "[plugins.nosuch]\nx = 1\n"),
        (("--config", "nope.toml", "check"), {}, None),
    ])
    assert_config_error(env_error, "http.port", "integer")
    assert_config_error(toml_error, "http.port", "65535")
    assert_config_error(plugin_error, "plugins.nosuch", "not installed")
    assert_config_error(missing, "nope.toml", "does not exist")
    assert env_error.out == toml_error.out == plugin_error.out == missing.out == ""


@pytest.mark.parametrize(("env", "toml", "words"), [
    ({}, "[htpp]\nport = 1\n", ("htpp", "unknown section")),
    ({}, "[database]\nurl = 'postgresql://u:p@h/db'\npool_size = 3\n", ("database.pool_size",)),
    ({}, "[http\n", ("invalid TOML",)),
    ({}, "[ratelimit]\nper_ip = 'lots'\n", ("ratelimit.per_ip",)),
    ({"PROPMUBI_PLUGINS__ENABLED": "payments"}, None, ("plugins.enabled", "payments")),
    ({"PROPMUBI_PLUGINS__MODULES": "no_such_module_here"}, None, ("no_such_module_here",)),
    ({"PROPMUBI_HTTP__PROT": "1"}, None, ("PROPMUBI_HTTP__PROT", "http.prot")),
    ({"PROPMUBI_CONFIG": "gone.toml"}, None, ("gone.toml", "does not exist")),
    ({"PROPMUBI_CONFIG": "."}, None, ("cannot be read",)),
    ({"CREDENTIALS_DIRECTORY": "."}, None, ("redis.url", "redis://")),
    ({"PROPMUBI_STORAGE__BACKEND": "s3"}, None, ("storage.s3_bucket", "required")),
    ({}, "[storage]\nbackend = 'ftp'\n", ("storage.backend", "'ftp'", "offered: local, s3")),
])
def test_more_bad_configs(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str], env: dict[str, str],
                          toml: str | None, words: tuple[str, ...]) -> None:
    (workdir / "redis.url").write_text("localhost:6379\n")
    result = main_in_process(workdir, monkeypatch, capsys, "check", env=env, toml=toml)
    assert_config_error(result, *words)
    assert result.out == ""


def test_roles_need_their_urls(workdir: Path) -> None:
    db_only = {"PROPMUBI_DATABASE__URL": "postgresql://u@/db"}
    both = {**db_only, "PROPMUBI_REDIS__URL": "redis://127.0.0.1:1/0"}
    serve, scheduler, serve_no_redis, bad_port = propmubi_all(workdir, [
        (("serve",), {}, None), (("scheduler",), {}, None),
        (("serve",), db_only, None), (("serve", "--port", "70000"), both, None)])
    for result in (serve, scheduler):
        assert_config_error(result, "database.url", "PROPMUBI_DATABASE__URL", "make dev")
    assert_config_error(serve_no_redis, "redis.url")
    assert_config_error(bad_port, "65535")


def test_a_dev_file_is_only_used_while_its_dev_runs(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """var/dev.toml of a `propmubi dev` that is gone (SIGKILL leaves it) is not used: the
    command still fails naming the key, and says why the file was ignored. (Using a running
    dev's file is tests/core/test_cli_dev.py's.)"""
    (workdir / "var").mkdir()
    dev_file = workdir / "var" / "dev.toml"
    dev_file.write_text(f"pid = {os.getpid()}\n"  # alive, but not a propmubi dev
                        'database_url = "postgresql://postgres@/propmubi?host=/nowhere"\n'
                        'redis_url = "unix:///nowhere/redis.sock"\n')
    stale = main_in_process(workdir, monkeypatch, capsys, "migrate", "status")
    assert_config_error(stale, "database.url: required", "make dev",
                        "not using var/dev.toml", f"pid {os.getpid()} is not a running")
    dev_file.write_text("not toml [")
    garbled = main_in_process(workdir, monkeypatch, capsys, "migrate", "status")
    assert_config_error(garbled, "database.url: required")
    assert "dev.toml" not in garbled.err
    # `make dev PORT=...` is checked like serve's --port, before anything starts.
    port = main_in_process(workdir, monkeypatch, capsys, "dev", "--port", "70000")
    assert_config_error(port, "dev options", "65535")


def test_help_and_version_work_with_a_broken_config(workdir: Path) -> None:
    env = {"PROPMUBI_HTTP__PORT": "eighty"}
    main_help, version = propmubi_all(workdir, [(("--help",), env, None),
                                                (("--version",), env, None)])
    assert main_help.code == 0, main_help
    assert "usage: propmubi" in main_help.out
    for command in ("serve", "scheduler", "migrate", "dev", "check", "plugins", "config"):
        assert command in main_help.out
    assert main_help.err == ""
    assert (version.code, version.out.strip()) == (0, "propmubi 0.1.0")


def test_sub_command_help_and_usage_errors(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    env = {"PROPMUBI_HTTP__PORT": "eighty"}
    serve_help = main_in_process(workdir, monkeypatch, capsys, "serve", "--help", env=env)
    assert serve_help.code == 0 and "--port" in serve_help.out
    # An unknown command is argparse's usage error (also 2), not a traceback.
    unknown = main_in_process(workdir, monkeypatch, capsys, "fly")
    assert unknown.code == 2 and "invalid choice" in unknown.err
    down = main_in_process(workdir, monkeypatch, capsys, "migrate", "down")
    assert down.code == 2 and "--to" in down.err


# -------------------------------------------------------------------------------------------------
# check, config, plugins
# -------------------------------------------------------------------------------------------------


def test_check_on_a_good_config(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "propmubi.toml").write_text("[http]\nport = 9002\n")
    given, local = propmubi_all(workdir, [(("check",), {}, "[http]\nport = 9001\n"),
                                          (("check",), {}, None)])
    assert given.code == 0, given
    assert "configuration OK" in given.out and ".toml" in given.out and "core" in given.out
    assert given.err == ""
    # ./propmubi.toml is read when no --config or PROPMUBI_CONFIG says otherwise.
    assert local.code == 0 and "(propmubi.toml)" in local.out
    (workdir / "propmubi.toml").write_text("[http]\nport = 'eighty'\n")
    assert_config_error(main_in_process(workdir, monkeypatch, capsys, "check"), "http.port")
    # What `propmubi web` refuses to serve, `check` refuses first.
    (workdir / "propmubi.toml").write_text("[http]\nunix_socket = '/run/propmubi/web.sock'\n")
    assert_config_error(main_in_process(workdir, monkeypatch, capsys, "check"),
                        "http.trust_forwarded")


def test_config_prints_json_with_secrets_masked(workdir: Path) -> None:
    result = propmubi(workdir, "config", env={
        "PROPMUBI_DATABASE__URL": "postgresql://app:s3cret@db.internal/propmubi",
        "PROPMUBI_REDIS__URL": "redis://:s3cret@cache.internal:6379/0",
        "PROPMUBI_HTTP__PORT": "9003",
    })
    assert result.code == 0, result
    assert "s3cret" not in result.out
    data = json.loads(result.out)
    assert data["database"]["url"] == "postgresql://app:***@db.internal/propmubi"
    assert data["database"]["replica_url"] == ""
    assert data["redis"]["url"] == "redis://:***@cache.internal:6379/0"
    assert data["http"]["port"] == 9003
    assert set(data) == {f.name for f in attrs.fields(Config)} - {"source"}


PLUGINS_TOML = """
[plugins]
modules = ["tests.refplugin", "shopplug"]
enabled = ["{enabled}"]
"""

SHOP_PLUGIN = '''
import logging

import attrs

from propmubi import hookimpl
from propmubi.types import CliCommand, PluginInfo


@attrs.frozen
class Settings:
    currency: str = "INR"
    api_key: str = attrs.field(default="", metadata={"secret": True})


@hookimpl
def propmubi_plugin_info():
    return PluginInfo(name="shop", version="3.2.1", requires=("core",))


@hookimpl
def propmubi_settings_class():
    return Settings


def configure(parser):
    parser.add_argument("--code", type=int, default=0)


async def run(args, ctx):
    one = await ctx.db.fetchval("SELECT 1")
    await ctx.redis.ping()
    logging.getLogger("shopplug").warning("a log line of shop-report")
    print(f"shop ran: db={one} currency={ctx.settings.currency} plugin={ctx.name}")
    return args.code


async def listing(args, ctx):
    logging.getLogger("shopplug").warning("a log line of shop-list (ctx=%s)", ctx)
    print("the listing")
    return 0


@hookimpl
def propmubi_cli_commands():
    return [CliCommand(name="shop-report", help="print the shop report", configure=configure,
                       run=run),
            CliCommand(name="shop-list", help="list what the shop declares",
                       configure=lambda parser: None, run=listing, needs_services=False)]
'''

CLASH_PLUGIN = '''
from propmubi import hookimpl
from propmubi.types import CliCommand, PluginInfo


@hookimpl
def propmubi_plugin_info():
    return PluginInfo(name="clash")


async def run(args, services):
    return 0


@hookimpl
def propmubi_cli_commands():
    return [CliCommand(name="{name}", help="x", configure=lambda p: None, run=run)]
'''


@pytest.fixture
def plugin_dir(workdir: Path) -> Path:
    (workdir / "shopplug.py").write_text(SHOP_PLUGIN)
    (workdir / "clash_serve.py").write_text(CLASH_PLUGIN.replace("{name}", "serve"))
    (workdir / "clash_shop.py").write_text(CLASH_PLUGIN.replace("{name}", "shop-report"))
    return workdir


def plugin_env(workdir: Path, **extra: str) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(ROOT), str(workdir)]), **extra}


def test_plugins_lists_enabled_and_disabled(plugin_dir: Path) -> None:
    result = propmubi(plugin_dir, "plugins", env=plugin_env(plugin_dir),
                      toml=PLUGINS_TOML.format(enabled="shop"))
    assert result.code == 0, result
    lines = {line.split()[1]: line for line in result.out.splitlines()}
    assert lines["core"].startswith("enabled")
    assert lines["shop"].startswith("enabled") and "3.2.1" in lines["shop"]
    assert "module shopplug" in lines["shop"] and "requires core" in lines["shop"]
    assert lines["reference"].startswith("disabled")
    assert "module tests.refplugin (not in plugins.enabled)" in lines["reference"]


def test_plugin_settings_in_config_and_check(plugin_dir: Path) -> None:
    toml = PLUGINS_TOML.format(enabled="shop") + "[plugins.shop]\napi_key = 'k-s3cret'\n"
    shown, bad = propmubi_all(plugin_dir, [
        (("config",), plugin_env(plugin_dir), toml),
        (("check",), plugin_env(plugin_dir, PROPMUBI_PLUGINS__SHOP__COLOUR="red"), toml)])
    assert shown.code == 0, shown
    assert "k-s3cret" not in shown.out
    assert json.loads(shown.out)["plugins"]["settings"]["shop"] == \
        {"api_key": "***", "currency": "INR"}
    assert_config_error(bad, "plugins.shop.colour")


def test_plugin_command_runs_on_real_services(plugin_dir: Path, config: Config) -> None:
    env = plugin_env(plugin_dir, PROPMUBI_DATABASE__URL=config.database.url,
                     PROPMUBI_REDIS__URL=config.redis.url,
                     PROPMUBI_REDIS__KEY_PREFIX=config.redis.key_prefix,
                     PROPMUBI_PLUGINS__SHOP__CURRENCY="EUR",
                     PROPMUBI_LOGGING__LEVEL="WARNING")
    toml = PLUGINS_TOML.format(enabled="shop")
    help_text, seven, zero, gone = propmubi_all(plugin_dir, [
        (("--help",), env, toml),
        (("shop-report", "--code", "7"), env, toml),
        (("shop-report",), env, toml),
        (("shop-report",), env, PLUGINS_TOML.format(enabled="reference"))])
    assert "shop-report" in help_text.out and "print the shop report" in help_text.out
    assert seven.code == 7, seven
    # stdout carries the command's output only; log records go to stderr.
    assert seven.out == "shop ran: db=1 currency=EUR plugin=shop\n"
    assert "a log line of shop-report" in seven.err
    assert zero.code == 0, zero
    # Without the plugin enabled the command does not exist.
    assert gone.code == 2 and "invalid choice" in gone.err


def test_a_command_that_needs_no_services_runs_without_urls(plugin_dir: Path) -> None:
    result = propmubi(plugin_dir, "shop-list", env=plugin_env(plugin_dir),
                      toml=PLUGINS_TOML.format(enabled="shop"))
    assert result.code == 0, result
    assert result.out == "the listing\n"
    assert "a log line of shop-list (ctx=None)" in result.err


def test_plugin_commands_that_clash(plugin_dir: Path) -> None:
    with_core, with_plugin = propmubi_all(plugin_dir, [
        (("--help",), plugin_env(plugin_dir, PROPMUBI_PLUGINS__MODULES="clash_serve"), None),
        (("check",), plugin_env(plugin_dir, PROPMUBI_PLUGINS__MODULES="shopplug,clash_shop"),
         None)])
    # --help still answers, with the core's commands; anything else reports the clash.
    assert with_core.code == 0 and "serve" in with_core.out
    assert_config_error(with_plugin, "'shop-report'", "'shop'", "'clash'")


def test_plugin_command_that_clashes_with_a_core_one(plugin_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(plugin_dir))
    try:
        result = main_in_process(plugin_dir, monkeypatch, capsys, "check",
                                 env={"PROPMUBI_PLUGINS__MODULES": "clash_serve"})
    finally:
        for name in set(sys.modules) - before:
            del sys.modules[name]
    assert_config_error(result, "'serve'", "clashes")
