"""Configuration: attrs classes read from ``propmubi.toml``, ``PROPMUBI_*`` env vars and
credentials.

Precedence, lowest first: the defaults below, the TOML file,
``$CREDENTIALS_DIRECTORY/<section>.<key>`` files (systemd ``LoadCredential=``), then
``PROPMUBI_<SECTION>__<KEY>`` environment variables. A plugin's ``[plugins.<name>]`` table takes
the same overrides as ``plugins.<name>.<key>`` files and ``PROPMUBI_PLUGINS__<NAME>__<KEY>``
(a key of a nested table adds its parts: ``plugins.payments.razorpay.key_secret``,
``PROPMUBI_PLUGINS__PAYMENTS__RAZORPAY__KEY_SECRET``).
Every problem is reported as one :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

import attrs
import cattrs

from propmubi.types import RateLimit

__all__ = ["Config", "ConfigError", "dev_secret", "load_config", "plugin_settings"]

ENV_PREFIX = "PROPMUBI_"
SECRET = {"secret": True}


def dev_secret(nbytes: int = 32) -> dict[str, Any]:
    """Field metadata for a secret that ``propmubi dev`` generates on its first run.

    Use it on a plugin settings field whose default is empty:
    ``signing_key: str = attrs.field(default="", metadata=dev_secret())``. ``dev`` writes a
    random value to ``<var_dir>/credentials/plugins.<name>.<key>`` (read back as a systemd-style
    credential), so no secret ever lives in the repository; production supplies its own.
    """
    import secrets

    return {"secret": True, "generate": lambda: secrets.token_urlsafe(nbytes)}


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the key."""


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value <= 0:
        raise ValueError("must be greater than 0")


def _rate(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    # Checked here so that a typo fails `propmubi check`, not the first request.
    RateLimit.parse(value)


def _url(*schemes: str, dsn: bool = False) -> Any:
    """Accept an empty value or a URL with one of ``schemes`` (or a libpq ``key=value`` DSN)."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if not value or urlsplit(value).scheme in schemes or (dsn and "://" not in value
                                                              and "=" in value):
            return
        raise ValueError(f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}")

    return check


def _at_most_pool_max(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 0:
        raise ValueError("must be at least 0")
    if value > instance.pool_max:
        raise ValueError(f"must not exceed pool_max ({instance.pool_max})")


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
    # A connection must deliver a request's line and headers within this many seconds of
    # opening, or of the first byte of its next request (propmubi.web.listeners).
    header_timeout: float = attrs.field(default=15.0, validator=_positive)
    # An idle keep-alive connection between two requests is closed after this many seconds;
    # keep it above the proxy's upstream keep-alive (nginx: keepalive_timeout 60s).
    keepalive_timeout: float = attrs.field(default=75.0, validator=_positive)
    # Seconds an idempotent route keeps the answer it gave to an Idempotency-Key, replaying it
    # to a retry of the same request (propmubi.web.idempotency); then the key may be used anew.
    idempotency_ttl: float = attrs.field(default=86_400.0, validator=_positive)


def _listen_address(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value:
        parse_listen(value)


def parse_listen(value: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:9464"`` for IPv6) as ``(host, port)``.

    :raises ValueError: saying what is expected.
    """
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f'expected "host:port" (e.g. "127.0.0.1:9464"), got {value!r}')
    return host, int(port)


@attrs.frozen
class MetricsSection:
    """Where the web role serves ``/metrics``."""

    # Empty: /metrics on the main listener (http.host/port or http.unix_socket). "host:port":
    # a listener of its own serving only /metrics (and /health), and /metrics on the main
    # listener answers 404.
    listen: str = attrs.field(default="", validator=_listen_address)


@attrs.frozen
class DatabaseSection:
    """PostgreSQL: primary and optional read replica."""

    url: str = attrs.field(default="", metadata=SECRET,
                           validator=_url("postgresql", "postgres", dsn=True))
    replica_url: str = attrs.field(default="", metadata=SECRET,
                                   validator=_url("postgresql", "postgres", dsn=True))
    pool_min: int = attrs.field(default=2, validator=_at_most_pool_max)
    pool_max: int = attrs.field(default=16, validator=_positive)
    statement_timeout_ms: int = attrs.field(default=15_000, validator=_positive)
    connect_timeout: float = attrs.field(default=10.0, validator=_positive)


@attrs.frozen
class RedisSection:
    """Redis: one client; every key starts with ``key_prefix``."""

    url: str = attrs.field(default="", metadata=SECRET,
                           validator=_url("redis", "rediss", "unix"))
    key_prefix: str = "propmubi:"
    max_connections: int = attrs.field(default=64, validator=_positive)
    socket_timeout: float = attrs.field(default=5.0, validator=_positive)
    # Bounds of Redis calls on the request path (propmubi.redis.bounded): caches and rate
    # limits give up after fast_timeout and go on without Redis; uses where Redis holds the
    # truth (console sessions and lockout, OTP send counts) answer 503 after record_timeout.
    fast_timeout: float = attrs.field(default=0.1, validator=_positive)
    record_timeout: float = attrs.field(default=1.0, validator=_positive)
    # This many failed bounded calls in a row open the circuit: for breaker_cooldown seconds
    # those calls are not even tried (then one trial call decides).
    breaker_failures: int = attrs.field(default=5, validator=_positive)
    breaker_cooldown: float = attrs.field(default=5.0, validator=_positive)


def _needed_by_s3(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value and instance.backend == "s3":
        raise ValueError('required with backend = "s3"')


def _name(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value.strip():
        raise ValueError("must not be empty")


@attrs.frozen
class StorageSection:
    """Object storage, shared by every plugin (``ctx.storage``): photos, documents, receipts."""

    # "local" (files under local_dir, served by the web process at /media/...), "s3" (any
    # S3-compatible service), or a name a plugin offers through propmubi_storage_backends.
    backend: str = attrs.field(default="local", validator=_name)
    # The local backend's folder; empty: <app.var_dir>/media.
    local_dir: str = ""
    # The "s3" backend: the service (empty: AWS), region, bucket and credentials (empty: the
    # AWS credential chain: environment, ~/.aws, the instance's role).
    s3_endpoint_url: str = attrs.field(default="", validator=_url("http", "https"))
    s3_region: str = "us-east-1"
    s3_bucket: str = attrs.field(default="", validator=_needed_by_s3)
    s3_access_key_id: str = ""
    s3_secret_access_key: str = attrs.field(default="", metadata=SECRET)
    # Public base URL of stored objects (a CDN, say); empty: served at /media/... by the web
    # process.
    s3_public_base_url: str = attrs.field(default="", validator=_url("http", "https"))


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
    per_ip: str = attrs.field(default="600/minute", validator=_rate)
    # Applied per authenticated subject when a request carries one.
    per_subject: str = attrs.field(default="1200/minute", validator=_rate)
    # A signed-in request counts per subject at the route's limit, and per client IP against
    # a ceiling this many times the route's per-subject limit (offices and carrier NAT share
    # one address); anonymous requests count per IP at the route's per-IP limit.
    ip_ceiling_factor: int = attrs.field(default=20, validator=_positive)


@attrs.frozen
class SchedulerSection:
    """Periodic jobs."""

    # How often the scheduler wakes to look for due jobs, in seconds.
    tick: float = attrs.field(default=1.0, validator=_positive)
    # A job's lease outlives a crashed holder by at most this many seconds.
    lease_seconds: int = attrs.field(default=60, validator=_positive)


@attrs.frozen
class EventsSection:
    """The event bus: outbox relay, consumers, retries, dead letters, retention."""

    # Rows the relay moves per transaction, and how often it looks without a NOTIFY (s).
    relay_batch: int = attrs.field(default=500, validator=_positive)
    relay_poll: float = attrs.field(default=1.0, validator=_positive)
    # Entries a consumer reads per call, and how long a read blocks (ms).
    consumer_batch: int = attrs.field(default=100, validator=_positive)
    block_ms: int = attrs.field(default=1000, validator=_positive)
    # A handler running longer is cancelled and the delivery counts as failed (s).
    handler_timeout: float = attrs.field(default=30.0, validator=_positive)
    # Retry backoff: retry_base * 2^(deliveries-1), capped at retry_max (s).
    retry_base: float = attrs.field(default=0.5, validator=_positive)
    retry_max: float = attrs.field(default=60.0, validator=_positive)
    # How often pending entries are scanned for retries and claims (s).
    retry_scan: float = attrs.field(default=0.5, validator=_positive)
    # An entry pending this long on another consumer is taken over (that consumer died) (s).
    claim_idle: float = attrs.field(default=30.0, validator=_positive)
    # Deliveries before an event moves to the group's dead-letter stream.
    max_deliveries: int = attrs.field(default=5, validator=_positive)
    # How long the outbox keeps events for replay, and processed-event records (days).
    log_retention_days: float = attrs.field(default=7.0, validator=_positive)
    # Streams without any consumer group keep about this many entries.
    ungrouped_stream_max_len: int = attrs.field(default=10_000, validator=_positive)
    # Redis must not evict stream entries: "refuse" to start otherwise, or only "warn".
    eviction_policy_check: Literal["refuse", "warn"] = "refuse"


@attrs.frozen
class ConsoleSection:
    """The staff console: sessions and sign-in lockout."""

    # A session unused this long ends (s); every request slides it forward.
    idle_timeout: float = attrs.field(default=1800.0, validator=_positive)
    # A session ends this long after sign-in however busy it is (s).
    absolute_timeout: float = attrs.field(default=43_200.0, validator=_positive)
    # Failed sign-ins for one e-mail address before it is locked out.
    max_failures: int = attrs.field(default=5, validator=_positive)
    # Failed sign-ins from one client address before it is locked out (offices share one).
    max_failures_per_ip: int = attrs.field(default=20, validator=_positive)
    # The first lockout (s); each further failure doubles it, up to lockout_max.
    lockout_base: float = attrs.field(default=60.0, validator=_positive)
    lockout_max: float = attrs.field(default=3600.0, validator=_positive)
    # Failures are forgotten after this long without another one (s).
    failure_window: float = attrs.field(default=86_400.0, validator=_positive)


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
    metrics: MetricsSection = attrs.Factory(MetricsSection)
    database: DatabaseSection = attrs.Factory(DatabaseSection)
    redis: RedisSection = attrs.Factory(RedisSection)
    storage: StorageSection = attrs.Factory(StorageSection)
    logging: LoggingSection = attrs.Factory(LoggingSection)
    ratelimit: RateLimitSection = attrs.Factory(RateLimitSection)
    scheduler: SchedulerSection = attrs.Factory(SchedulerSection)
    events: EventsSection = attrs.Factory(EventsSection)
    console: ConsoleSection = attrs.Factory(ConsoleSection)
    plugins: PluginsSection = attrs.Factory(PluginsSection)
    source: str = attrs.field(default="", eq=False)

    def evolve(self, **sections: dict[str, Any]) -> Config:
        """Return a copy with some keys of some sections replaced: ``evolve(http={"port": 0})``."""
        changes = {name: attrs.evolve(getattr(self, name), **values)
                   for name, values in sections.items()}
        return attrs.evolve(self, **changes)


attrs.resolve_types(Config)  # section types are strings under `from __future__ import annotations`


def _is_literal(type_: Any) -> bool:
    # A def, not a lambda: in a lambda mypy picks get_origin's ParamSpec overload and then
    # calls the comparison with Literal impossible.
    return get_origin(type_) is Literal


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
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value.strip())
        raise ValueError(f"expected an integer, got {value!r}")

    def _float(value: Any, _: type) -> float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                pass
        # "nan" and "inf" parse, but no timeout or interval means anything with them.
        if number is None or not math.isfinite(number):
            raise ValueError(f"expected a number, got {value!r}")
        return number

    def _literal(value: Any, type_: Any) -> Any:
        allowed = get_args(type_)
        if value in allowed:
            return value
        raise ValueError(f"expected one of {', '.join(map(repr, allowed))}, got {value!r}")

    def _str(value: Any, _: type) -> str:
        if isinstance(value, str):
            return value
        raise ValueError(f"expected a string, got {value!r}")

    def _list_of_str(value: Any, _: type) -> list[str]:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except ValueError as exc:
                    raise ValueError(f"expected a JSON list of strings: {exc}") from None
            else:  # "a,b", or one per line (a credential file)
                value = [part.strip() for part in text.replace("\n", ",").split(",")
                         if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of strings, got {value!r}")
        return value

    def _tuple_of_str(value: Any, _: type) -> tuple[str, ...]:
        return tuple(_list_of_str(list(value) if isinstance(value, tuple) else value, _))

    conv.register_structure_hook(bool, _bool)
    conv.register_structure_hook(int, _int)
    conv.register_structure_hook(float, _float)
    conv.register_structure_hook(str, _str)
    conv.register_structure_hook_func(lambda t: t == list[str], _list_of_str)
    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], _tuple_of_str)
    conv.register_structure_hook_func(_is_literal, _literal)
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
    """The keys an env var or a credential file may set (``plugins.settings`` is set per
    plugin, never whole)."""
    known = {a.name: {f.name for f in attrs.fields(a.type)}
             for a in attrs.fields(Config) if a.type is not None and attrs.has(a.type)}
    known["plugins"].discard("settings")
    return known


def _read_credential(path: Path) -> str:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name}: cannot read credential file {path}: {exc}") from None


def _overlay_credentials(tree: dict[str, Any], directory: str) -> None:
    """Read ``<section>.<key>`` and ``plugins.<name>.<key>`` files from the systemd
    credentials directory; other files there belong to someone else and are ignored."""
    folder = Path(directory)
    if not folder.is_dir():
        return
    known = _known_keys()
    for path in sorted(folder.iterdir()):
        parts = path.name.split(".")
        if not path.is_file() or parts[0] not in known:
            continue
        if len(parts) == 2 and parts[1] in known[parts[0]]:
            _set_path(tree, parts, _read_credential(path))
        elif len(parts) >= 3 and parts[0] == "plugins" and all(parts):
            # plugins.<name>.<key>, or a key of a nested table: plugins.payments.razorpay.key_secret
            _set_path(tree, ["plugins", "settings", *parts[1:]], _read_credential(path))


def _overlay_env(tree: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Apply ``PROPMUBI_<SECTION>__<KEY>`` (and ``PROPMUBI_PLUGINS__<NAME>__<KEY>``)."""
    known = _known_keys()
    for name, value in sorted(environ.items()):
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
        elif section == "plugins" and len(parts) >= 3 and all(parts):
            # PROPMUBI_PLUGINS__<NAME>__<KEY>, or a nested table's key (..__RAZORPAY__KEY_ID)
            _set_path(tree, ["plugins", "settings", *parts[1:]], value)
        else:
            raise ConfigError(f"{name}: expected PROPMUBI_<SECTION>__<KEY> "
                              "or PROPMUBI_PLUGINS__<NAME>__<KEY>[__<KEY>...]")


def _check_sections(tree: dict[str, Any]) -> None:
    """Name a misspelt section, or a key written above every ``[section]`` header, plainly."""
    known = _known_keys()
    for name, value in tree.items():
        if name not in known:
            raise ConfigError(f"{name}: unknown section (expected one of "
                              f"{', '.join(sorted(known))})")
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a table ([{name}])")


def _lift_plugin_tables(tree: dict[str, Any]) -> None:
    """Move ``[plugins.<name>]`` tables (next to ``enabled`` in TOML) under ``settings``."""
    plugins = tree.get("plugins")
    if not isinstance(plugins, dict):
        return
    own = {f.name for f in attrs.fields(PluginsSection)}
    settings = plugins.setdefault("settings", {})
    if not isinstance(settings, dict):
        return  # reported by validation, naming plugins.settings
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
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        _check_sections(tree)
    _lift_plugin_tables(tree)
    if environ.get("CREDENTIALS_DIRECTORY"):
        _overlay_credentials(tree, environ["CREDENTIALS_DIRECTORY"])
    _overlay_env(tree, environ)
    config: Config = _structure(tree, Config, "")
    return attrs.evolve(config, source=str(path or ""))


def _structure(tree: Any, cls: type, prefix: str) -> Any:
    from propmubi.validation import structure_input

    obj, errors = structure_input(tree, cls, "config", _converter)
    if errors:
        first = errors[0]
        field, message = first["field"], first["message"]
        extra = "unknown field(s): "
        if message.startswith(extra):  # cattrs names unknown keys of a nested table at the table
            field = f"{field}.{message.removeprefix(extra).split(', ')[0]}"
            message = "unknown field"
        key = ".".join(p for p in (prefix, field) if p)
        raise ConfigError(f"{key or '(root)'}: {_friendly(message)}")
    return obj


def _friendly(message: str) -> str:
    return "unknown key" if message == "unknown field" else message


def plugin_settings(config: Config, name: str, cls: type[Any]) -> Any:
    """Structure ``[plugins.<name>]`` into the plugin's attrs class.

    :raises ConfigError: naming ``plugins.<name>.<key>``.
    """
    return _structure(config.plugins.settings.get(name, {}), cls, f"plugins.{name}")
