"""Configuration: attrs classes read from ``propmubi.toml``, ``PROPMUBI_*`` env vars and
credentials.

Precedence, lowest first: the defaults below, the TOML file,
``$CREDENTIALS_DIRECTORY/<section>.<key>`` files (systemd ``LoadCredential=``), then
``PROPMUBI_<SECTION>__<KEY>`` environment variables.
Every problem is reported as one :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs

__all__ = [
    "Config",
    "ConfigError",
    "load_config",
    "plugin_settings",
    "redacted",
]

ENV_PREFIX = "PROPMUBI_"
SECRET = {"secret": True}


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the key."""


def _positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and value <= 0:
        raise ValueError("must be greater than 0")


@attrs.frozen
class AppSection:
    """Process-wide settings."""

    environment: Literal["development", "test", "production"] = "development"
    # Where `dev` keeps its embedded databases, generated secrets and media.
    var_dir: str = "var"


@attrs.frozen
class HttpSection:
    """The web server and its middlewares."""

    host: str = "127.0.0.1"
    port: int = attrs.field(default=8080, validator=attrs.validators.and_(
        attrs.validators.ge(0), attrs.validators.le(65535)))
    unix_socket: str = ""
    reuse_port: bool = False
    # Seconds given to in-flight requests after SIGTERM before they are cut.
    shutdown_grace: float = attrs.field(default=20.0, validator=_positive)
    # Default per-route handler timeout in seconds; a route may declare its own.
    request_timeout: float = attrs.field(default=30.0, validator=_positive)
    max_body_bytes: int = attrs.field(default=1_048_576, validator=_positive)
    cors_origins: list[str] = attrs.Factory(list)
    # Trust X-Forwarded-For from a reverse proxy in front of the web processes.
    trust_forwarded: bool = False
    access_log: bool = True


@attrs.frozen
class DatabaseSection:
    """PostgreSQL: primary and optional read replica."""

    url: str = attrs.field(default="", metadata=SECRET)
    replica_url: str = attrs.field(default="", metadata=SECRET)
    pool_min: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    pool_max: int = attrs.field(default=16, validator=_positive)
    statement_timeout_ms: int = attrs.field(default=15_000, validator=_positive)
    connect_timeout: float = attrs.field(default=10.0, validator=_positive)


@attrs.frozen
class RedisSection:
    """Redis: one client; every key starts with ``key_prefix``."""

    url: str = attrs.field(default="", metadata=SECRET)
    key_prefix: str = "propmubi:"
    max_connections: int = attrs.field(default=64, validator=_positive)
    socket_timeout: float = attrs.field(default=5.0, validator=_positive)


@attrs.frozen
class LoggingSection:
    """Logs go to stdout, one JSON object a line (journald keeps them)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json: bool = True


@attrs.frozen
class RateLimitSection:
    """Redis-backed fixed-window limits for ``/api`` routes (a route may declare its own)."""

    enabled: bool = True
    # "<count>/<second|minute|hour>"; applied per client IP to every /api route.
    per_ip: str = "600/minute"
    # Applied per authenticated subject when a request carries one.
    per_subject: str = "1200/minute"


@attrs.frozen
class SchedulerSection:
    """Periodic jobs."""

    # How often the scheduler wakes to look for due jobs, in seconds.
    tick: float = attrs.field(default=1.0, validator=_positive)
    # A job's lease outlives a crashed holder by at most this many seconds.
    lease_seconds: int = attrs.field(default=60, validator=_positive)


@attrs.frozen
class PluginsSection:
    """Which plugins run."""

    # Entry-point names of the plugins to enable. Empty means every installed plugin.
    enabled: list[str] = attrs.Factory(list)
    # Extra plugin modules by dotted import path, loaded as if installed (tests, local plugins).
    modules: list[str] = attrs.Factory(list)
    # `[plugins.<name>]` tables, validated by each plugin's own settings class.
    settings: dict[str, dict[str, Any]] = attrs.Factory(dict)


@attrs.frozen
class Config:
    """The whole configuration."""

    app: AppSection = attrs.Factory(AppSection)
    http: HttpSection = attrs.Factory(HttpSection)
    database: DatabaseSection = attrs.Factory(DatabaseSection)
    redis: RedisSection = attrs.Factory(RedisSection)
    logging: LoggingSection = attrs.Factory(LoggingSection)
    ratelimit: RateLimitSection = attrs.Factory(RateLimitSection)
    scheduler: SchedulerSection = attrs.Factory(SchedulerSection)
    plugins: PluginsSection = attrs.Factory(PluginsSection)
    source: str = attrs.field(default="", eq=False)

    def evolve(self, **sections: dict[str, Any]) -> Config:
        """Return a copy with some keys of some sections replaced: ``evolve(http={"port": 0})``."""
        changes = {name: attrs.evolve(getattr(self, name), **values)
                   for name, values in sections.items()}
        return attrs.evolve(self, **changes)


attrs.resolve_types(Config)  # section types are strings under `from __future__ import annotations`


def _strict_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def _bool(value: Any, _: type) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on"}:
            return True
        if isinstance(value, str) and value.lower() in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"expected a boolean, got {value!r}")

    def _int(value: Any, _: type) -> int:
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValueError(f"expected an integer, got {value!r}")

    def _float(value: Any, _: type) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ValueError(f"expected a number, got {value!r}")

    def _str(value: Any, _: type) -> str:
        if isinstance(value, str):
            return value
        raise ValueError(f"expected a string, got {value!r}")

    def _list_of_str(value: Any, _: type) -> list[str]:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                value = json.loads(text)
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of strings, got {value!r}")
        return value

    conv.register_structure_hook(bool, _bool)
    conv.register_structure_hook(int, _int)
    conv.register_structure_hook(float, _float)
    conv.register_structure_hook(str, _str)
    conv.register_structure_hook_func(lambda t: t == list[str], _list_of_str)
    return conv


_converter = _strict_converter()


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(path)}: {part} is not a table")
    node[path[-1]] = value


def _known_keys() -> dict[str, set[str]]:
    return {a.name: {f.name for f in attrs.fields(a.type)}
            for a in attrs.fields(Config) if attrs.has(a.type)}


def _overlay_credentials(tree: dict[str, Any], directory: str) -> None:
    """Read ``<section>.<key>`` files from the systemd credentials directory."""
    folder = Path(directory)
    if not folder.is_dir():
        return
    for section, keys in _known_keys().items():
        for key in keys:
            path = folder / f"{section}.{key}"
            if path.is_file():
                _set_path(tree, [section, key], path.read_text().strip())


def _overlay_env(tree: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Apply ``PROPMUBI_<SECTION>__<KEY>`` (and ``PROPMUBI_PLUGINS__<NAME>__<KEY>``)."""
    known = _known_keys()
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        section = parts[0]
        if section not in known:
            raise ConfigError(f"{name}: unknown section {section!r}")
        if len(parts) == 2:
            if parts[1] not in known[section]:
                raise ConfigError(f"{name}: unknown key {section}.{parts[1]}")
            _set_path(tree, parts, value)
        elif section == "plugins" and len(parts) == 3:
            _set_path(tree, ["plugins", "settings", parts[1], parts[2]], value)
        else:
            raise ConfigError(f"{name}: expected PROPMUBI_<SECTION>__<KEY>")


def _lift_plugin_tables(tree: dict[str, Any]) -> None:
    """Move ``[plugins.<name>]`` tables (next to ``enabled`` in TOML) under ``settings``."""
    plugins = tree.get("plugins")
    if not isinstance(plugins, dict):
        return
    own = {f.name for f in attrs.fields(PluginsSection)}
    settings = plugins.setdefault("settings", {})
    for key in [k for k in plugins if k not in own]:
        if isinstance(plugins[key], dict):
            settings.setdefault(key, {}).update(plugins.pop(key))


def default_config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """The file named by ``PROPMUBI_CONFIG``, else ``./propmubi.toml`` when it exists."""
    environ = os.environ if environ is None else environ
    if environ.get("PROPMUBI_CONFIG"):
        return Path(environ["PROPMUBI_CONFIG"])
    local = Path("propmubi.toml")
    return local if local.is_file() else None


def load_config(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    use_default_path: bool = True,
) -> Config:
    """Read, merge and validate the configuration.

    :param path: a TOML file; when None, :func:`default_config_path` decides.
    :param environ: the environment to read overrides from (``os.environ`` by default).
    :param use_default_path: look for ``PROPMUBI_CONFIG`` / ``./propmubi.toml`` when no path
        is given.
    :returns: a validated :class:`Config`.
    :raises ConfigError: naming the first bad key.
    """
    environ = os.environ if environ is None else environ
    if path is None and use_default_path:
        path = default_config_path(environ)
    tree: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            tree = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    _lift_plugin_tables(tree)
    if environ.get("CREDENTIALS_DIRECTORY"):
        _overlay_credentials(tree, environ["CREDENTIALS_DIRECTORY"])
    _overlay_env(tree, environ)
    config = _structure(tree, Config, "")
    return attrs.evolve(config, source=str(path or ""))


def _structure(tree: Any, cls: type, prefix: str) -> Any:
    from propmubi.validation import structure_input

    obj, errors = structure_input(tree, cls, "config", _converter)
    if errors:
        first = errors[0]
        key = ".".join(p for p in (prefix, first["field"]) if p)
        raise ConfigError(f"{key or '(root)'}: {_friendly(first['message'])}")
    return obj


def _friendly(message: str) -> str:
    return "unknown key" if message == "unknown field" else message


def plugin_settings(config: Config, name: str, cls: type[Any]) -> Any:
    """Structure ``[plugins.<name>]`` into the plugin's attrs class.

    :raises ConfigError: naming ``plugins.<name>.<key>``.
    """
    return _structure(config.plugins.settings.get(name, {}), cls, f"plugins.{name}")


def redacted(config: Config) -> dict[str, Any]:
    """The configuration as plain data, secrets masked (empty ones stay empty)."""
    out: dict[str, Any] = {}
    for section in attrs.fields(Config):
        value = getattr(config, section.name)
        if not attrs.has(type(value)):
            continue
        data = _converter.unstructure(value)
        for f in attrs.fields(type(value)):
            if f.metadata.get("secret") and data.get(f.name):
                data[f.name] = _mask_url(data[f.name])
        out[section.name] = data
    return out


def _mask_url(value: str) -> str:
    """Hide a password inside a URL but keep the host, which operators need to see."""
    if "://" in value and "@" not in value:
        return value
    if "://" in value:
        scheme, rest = value.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return "***"
