"""Configuration: defaults, TOML, credentials, env overrides, plugin settings, errors, redaction."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import pytest

from propmubi import hookimpl
from propmubi.config import (
    Config,
    ConfigError,
    default_config_path,
    load_config,
    plugin_settings,
)
from propmubi.plugins import PluginError, load_plugins
from propmubi.redaction import redacted
from propmubi.types import PluginInfo


def load(tmp_path: Path, toml: str | None = None, env: dict[str, str] | None = None,
         credentials: dict[str, str] | None = None) -> Config:
    """Load from an optional TOML text, env mapping and credentials folder; nothing else."""
    path = None
    if toml is not None:
        path = tmp_path / "propmubi.toml"
        path.write_text(toml)
    environ = dict(env or {})
    if credentials is not None:
        folder = tmp_path / "credentials"
        folder.mkdir(exist_ok=True)
        for name, value in credentials.items():
            (folder / name).write_text(value)
        environ["CREDENTIALS_DIRECTORY"] = str(folder)
    return load_config(path, environ, use_default_path=False)


def config_error(tmp_path: Path, toml: str | None = None, env: dict[str, str] | None = None,
                 credentials: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, toml, env, credentials)
    return str(info.value)


# -------------------------------------------------------------------------------------------------
# Sources
# -------------------------------------------------------------------------------------------------


def test_defaults_without_file_or_env(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config == Config()
    assert config.source == ""
    assert config.http.port == 8080
    assert config.database.url == ""
    assert config.plugins.enabled == []
    assert config.plugins.settings == {}


def test_the_shipped_propmubi_toml_is_valid_and_matches_the_defaults() -> None:
    shipped = Path(__file__).parents[2] / "propmubi.toml"
    config = load_config(shipped, {})
    assert config.source == str(shipped)
    assert config.http == Config().http
    assert config.database == Config().database
    assert config.storage == Config().storage


def test_toml_values(tmp_path: Path) -> None:
    config = load(tmp_path, """
[app]
environment = "production"
[http]
host = "0.0.0.0"
port = 9000
reuse_port = true
shutdown_grace = 5
request_timeout = 2.5
cors_origins = ["https://a.example", "https://b.example"]
[database]
url = "postgresql://app:pw@db.internal/propmubi"
pool_min = 1
pool_max = 4
[logging]
level = "DEBUG"
json = false
[ratelimit]
per_ip = "10/second"
[plugins]
enabled = ["core"]
""")
    assert config.source == str(tmp_path / "propmubi.toml")
    assert config.app.environment == "production"
    assert (config.http.host, config.http.port, config.http.reuse_port) == ("0.0.0.0", 9000, True)
    assert config.http.shutdown_grace == 5.0 and isinstance(config.http.shutdown_grace, float)
    assert config.http.request_timeout == 2.5
    assert config.http.cors_origins == ["https://a.example", "https://b.example"]
    assert config.database.url == "postgresql://app:pw@db.internal/propmubi"
    assert (config.database.pool_min, config.database.pool_max) == (1, 4)
    assert config.logging.level == "DEBUG" and config.logging.json is False
    assert config.ratelimit.per_ip == "10/second"
    assert config.plugins.enabled == ["core"]
    # Untouched keys keep their defaults.
    assert config.redis == Config().redis


def test_default_path_is_propmubi_config_then_local_file(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_config_path({}) is None
    assert load_config(environ={}).source == ""
    (tmp_path / "propmubi.toml").write_text("[http]\nport = 7001\n")
    assert default_config_path({}) == Path("propmubi.toml")
    assert load_config(environ={}).http.port == 7001
    other = tmp_path / "other.toml"
    other.write_text("[http]\nport = 7002\n")
    assert load_config(environ={"PROPMUBI_CONFIG": str(other)}).http.port == 7002
    # An explicit path wins over both; use_default_path=False ignores both.
    assert load_config(tmp_path / "propmubi.toml", {"PROPMUBI_CONFIG": str(other)}).http.port \
        == 7001
    assert load_config(environ={"PROPMUBI_CONFIG": str(other)},
                       use_default_path=False).http.port == 8080


@pytest.mark.parametrize(("name", "value", "section", "key", "expected"), [
    ("PROPMUBI_HTTP__PORT", "9001", "http", "port", 9001),
    ("PROPMUBI_HTTP__PORT", " 9002 ", "http", "port", 9002),
    ("PROPMUBI_DATABASE__POOL_MAX", "32", "database", "pool_max", 32),
    ("PROPMUBI_HTTP__REUSE_PORT", "true", "http", "reuse_port", True),
    ("PROPMUBI_HTTP__REUSE_PORT", "1", "http", "reuse_port", True),
    ("PROPMUBI_HTTP__REUSE_PORT", "YES", "http", "reuse_port", True),
    ("PROPMUBI_HTTP__REUSE_PORT", "on", "http", "reuse_port", True),
    ("PROPMUBI_HTTP__ACCESS_LOG", "false", "http", "access_log", False),
    ("PROPMUBI_HTTP__ACCESS_LOG", "0", "http", "access_log", False),
    ("PROPMUBI_HTTP__ACCESS_LOG", "Off", "http", "access_log", False),
    ("PROPMUBI_HTTP__ACCESS_LOG", "no", "http", "access_log", False),
    ("PROPMUBI_HTTP__SHUTDOWN_GRACE", "2.5", "http", "shutdown_grace", 2.5),
    ("PROPMUBI_HTTP__SHUTDOWN_GRACE", "3", "http", "shutdown_grace", 3.0),
    ("PROPMUBI_SCHEDULER__TICK", "1e-1", "scheduler", "tick", 0.1),
    ("PROPMUBI_HTTP__CORS_ORIGINS", "https://a.example, https://b.example", "http",
     "cors_origins", ["https://a.example", "https://b.example"]),
    ("PROPMUBI_HTTP__CORS_ORIGINS", '["https://a.example", "x,y"]', "http", "cors_origins",
     ["https://a.example", "x,y"]),
    ("PROPMUBI_HTTP__CORS_ORIGINS", "", "http", "cors_origins", []),
    ("PROPMUBI_PLUGINS__ENABLED", "core", "plugins", "enabled", ["core"]),
    ("PROPMUBI_LOGGING__LEVEL", "WARNING", "logging", "level", "WARNING"),
    ("PROPMUBI_REDIS__URL", "unix:///run/redis.sock", "redis", "url", "unix:///run/redis.sock"),
    ("PROPMUBI_DATABASE__URL", "dbname=propmubi host=/run/postgresql", "database", "url",
     "dbname=propmubi host=/run/postgresql"),
])
def test_env_overrides_are_converted_to_the_key_type(
        tmp_path: Path, name: str, value: str, section: str, key: str, expected: Any) -> None:
    config = load(tmp_path, env={name: value})
    got = getattr(getattr(config, section), key)
    assert got == expected
    assert type(got) is type(expected)


def test_unrelated_env_vars_are_ignored(tmp_path: Path) -> None:
    config = load(tmp_path, env={"PROPMUBI_TEST_DATABASE_URL": "x", "PROPMUBI_CONFIG": "",
                                 "HTTP__PORT": "1", "PATH": "/bin"})
    assert config == Config()


def test_precedence_defaults_toml_credentials_env(tmp_path: Path) -> None:
    toml = "[http]\nport = 1001\nhost = \"toml-host\"\naccess_log = false\n"
    credentials = {"http.port": "1002\n", "http.host": "cred-host"}
    env = {"PROPMUBI_HTTP__PORT": "1003"}

    only_toml = load(tmp_path, toml)
    assert (only_toml.http.port, only_toml.http.host) == (1001, "toml-host")
    assert only_toml.http.request_timeout == 30.0  # default kept

    with_credentials = load(tmp_path, toml, credentials=credentials)
    assert (with_credentials.http.port, with_credentials.http.host) == (1002, "cred-host")
    assert with_credentials.http.access_log is False  # TOML kept where nothing overrides

    everything = load(tmp_path, toml, env, credentials)
    assert (everything.http.port, everything.http.host) == (1003, "cred-host")


def test_credentials_files(tmp_path: Path) -> None:
    config = load(tmp_path, credentials={
        "database.url": "postgresql://app:s3cret@db/propmubi\n",
        "redis.url": "redis://:pw@cache:6379/0",
        # Other services' credentials share the folder: not ours, ignored.
        "nginx.key": "x", "database": "x", "database.nope": "x", "unrelated": "x",
    })
    assert config.database.url == "postgresql://app:s3cret@db/propmubi"
    assert config.redis.url == "redis://:pw@cache:6379/0"


def test_credentials_directory_that_does_not_exist_is_ignored(tmp_path: Path) -> None:
    config = load_config(None, {"CREDENTIALS_DIRECTORY": str(tmp_path / "none")},
                         use_default_path=False)
    assert config == Config()


def test_credential_values_are_validated_like_any_other(tmp_path: Path) -> None:
    message = config_error(tmp_path, credentials={"http.port": "eighty"})
    assert message.startswith("http.port:")


# -------------------------------------------------------------------------------------------------
# Errors: one ConfigError naming the key
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("toml", "env", "key", "words"), [
    ("[htp]\nport = 1\n", {}, "htp", "unknown section"),
    ("port = 8080\n", {}, "port", "unknown section"),
    ("source = 'x'\n", {}, "source", "unknown section"),
    ("http = 5\n", {}, "http", "expected a table"),
    ("[http]\nportt = 1\n", {}, "http.portt", "unknown key"),
    ("[http]\nport = 'abc'\n", {}, "http.port", "expected an integer"),
    ("[http]\nport = 1.5\n", {}, "http.port", "expected an integer"),
    ("[http]\nport = true\n", {}, "http.port", "expected an integer"),
    ("[http]\nport = 70000\n", {}, "http.port", "65535"),
    ("[http]\nport = -1\n", {}, "http.port", "0"),
    ("[http]\nhost = 2\n", {}, "http.host", "expected a string"),
    ("[http]\nreuse_port = 'maybe'\n", {}, "http.reuse_port", "expected a boolean"),
    ("[http]\ncors_origins = [1]\n", {}, "http.cors_origins", "list of strings"),
    ("[http]\nshutdown_grace = 0\n", {}, "http.shutdown_grace", "greater than 0"),
    ("[http]\nmax_body_bytes = -5\n", {}, "http.max_body_bytes", "greater than 0"),
    ("[app]\nenvironment = 'prod'\n", {}, "app.environment", "'production'"),
    ("[logging]\nlevel = 'debug'\n", {}, "logging.level", "'DEBUG'"),
    ("[database]\npool_min = 20\npool_max = 10\n", {}, "database.pool_min", "pool_max"),
    ("[database]\nurl = 'mysql://x@y/z'\n", {}, "database.url", "postgresql://"),
    ("[database]\nreplica_url = 'localhost:5432'\n", {}, "database.replica_url", "postgresql"),
    ("[redis]\nurl = 'localhost:6379'\n", {}, "redis.url", "redis://"),
    ("[ratelimit]\nper_ip = 'lots'\n", {}, "ratelimit.per_ip", "lots"),
    ("[ratelimit]\nper_subject = '0/minute'\n", {}, "ratelimit.per_subject", "0/minute"),
    ("[scheduler]\nlease_seconds = 0\n", {}, "scheduler.lease_seconds", "greater than 0"),
    ("[plugins]\nenabled = [1]\n", {}, "plugins.enabled", "list of strings"),
    ("[plugins]\nsettings = 5\n", {}, "plugins.settings", ""),
    ("[plugins]\nreference = 5\n", {}, "plugins.reference", "unknown key"),
    (None, {"PROPMUBI_HTTP__PORT": "eighty"}, "http.port", "expected an integer"),
    (None, {"PROPMUBI_HTTP__PORT": "70000"}, "http.port", "65535"),
    (None, {"PROPMUBI_HTTP__SHUTDOWN_GRACE": "nan"}, "http.shutdown_grace", "number"),
    (None, {"PROPMUBI_HTTP__REQUEST_TIMEOUT": "inf"}, "http.request_timeout", "number"),
    (None, {"PROPMUBI_HTTP__REUSE_PORT": "2"}, "http.reuse_port", "boolean"),
    (None, {"PROPMUBI_HTTP__CORS_ORIGINS": '["a", 1]'}, "http.cors_origins", "list"),
    (None, {"PROPMUBI_HTTP__CORS_ORIGINS": '["a",'}, "http.cors_origins", "JSON"),
    (None, {"PROPMUBI_HTP__PORT": "1"}, "PROPMUBI_HTP__PORT", "unknown section"),
    (None, {"PROPMUBI_HTTP__PORTT": "1"}, "PROPMUBI_HTTP__PORTT", "http.portt"),
    (None, {"PROPMUBI_HTTP__PORT__X": "1"}, "PROPMUBI_HTTP__PORT__X", "PROPMUBI_<SECTION>"),
    (None, {"PROPMUBI_PLUGINS__SETTINGS": "{}"}, "PROPMUBI_PLUGINS__SETTINGS", "unknown key"),
    (None, {"PROPMUBI_PLUGINS__X__": "1"}, "PROPMUBI_PLUGINS__X__", "PROPMUBI_PLUGINS__<NAME>"),
    ("plugins = 5\n", {"PROPMUBI_PLUGINS__X__Y": "1"}, "plugins", "table"),
])
def test_each_bad_value_is_one_error_naming_the_key(
        tmp_path: Path, toml: str | None, env: dict[str, str], key: str, words: str) -> None:
    message = config_error(tmp_path, toml, env)
    assert message.startswith(f"{key}:") or message.startswith(f"{key} "), message
    assert words in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_config(tmp_path / "nope.toml", {})
    assert "nope.toml" in str(info.value)


def test_missing_file_named_by_propmubi_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml does not exist"):
        load_config(environ={"PROPMUBI_CONFIG": str(tmp_path / "nope.toml")})


@pytest.mark.parametrize("content", [b"[http\nport = 1\n", b"[http]\nport = \n", b"\xff\xfe[http]"])
def test_unreadable_or_invalid_toml(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert str(path) in str(info.value)


def test_a_directory_instead_of_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path, {})


def test_evolve_replaces_keys_and_validates() -> None:
    config = Config().evolve(http={"port": 0}, database={"pool_max": 3, "pool_min": 1})
    assert config.http.port == 0 and config.http.host == "127.0.0.1"
    assert (config.database.pool_min, config.database.pool_max) == (1, 3)
    with pytest.raises(ValueError, match="65535"):
        Config().evolve(http={"port": 65536})


# -------------------------------------------------------------------------------------------------
# Per-plugin settings
# -------------------------------------------------------------------------------------------------


@attrs.frozen
class ShopSettings:
    """Settings of the test plugin "shop"."""

    currency: str = "INR"
    max_items: int = attrs.field(default=10, validator=attrs.validators.ge(1))
    discount: float = 0.0
    live: bool = False
    regions: list[str] = attrs.Factory(list)
    api_key: str = attrs.field(default="", metadata={"secret": True})
    webhook_url: str = attrs.field(default="", metadata={"secret": True})


def shop_plugin(settings: type | None = ShopSettings) -> Any:
    plugin = SimpleNamespace(__name__="shop")
    plugin.propmubi_plugin_info = hookimpl(lambda: PluginInfo(name="shop"))
    if settings is not None:
        plugin.propmubi_settings_class = hookimpl(lambda: settings)
    return plugin


def shop_settings(tmp_path: Path, toml: str | None = None, env: dict[str, str] | None = None,
                  credentials: dict[str, str] | None = None) -> ShopSettings:
    config = load(tmp_path, toml, env, credentials)
    return load_plugins(config, extra=[shop_plugin()]).get("shop").settings


def test_plugin_settings_default_without_a_table(tmp_path: Path) -> None:
    assert shop_settings(tmp_path) == ShopSettings()


def test_plugin_settings_from_toml_env_and_credentials(tmp_path: Path) -> None:
    toml = """
[plugins]
enabled = ["shop"]

[plugins.shop]
currency = "EUR"
max_items = 3
regions = ["eu"]
"""
    assert shop_settings(tmp_path, toml) == ShopSettings(currency="EUR", max_items=3,
                                                         regions=["eu"])
    got = shop_settings(tmp_path, toml, env={
        "PROPMUBI_PLUGINS__SHOP__MAX_ITEMS": "7",
        "PROPMUBI_PLUGINS__SHOP__DISCOUNT": "0.25",
        "PROPMUBI_PLUGINS__SHOP__LIVE": "true",
        "PROPMUBI_PLUGINS__SHOP__REGIONS": "eu,in",
    }, credentials={"plugins.shop.api_key": "k-123\n", "plugins.shop.currency": "USD"})
    assert got == ShopSettings(currency="USD", max_items=7, discount=0.25, live=True,
                               regions=["eu", "in"], api_key="k-123")
    # env beats credentials beats TOML for plugin keys too
    got = shop_settings(tmp_path, toml, env={"PROPMUBI_PLUGINS__SHOP__CURRENCY": "GBP"},
                        credentials={"plugins.shop.currency": "USD"})
    assert got.currency == "GBP"


@pytest.mark.parametrize(("toml", "env", "key"), [
    ("[plugins.shop]\nmax_items = 0\n", {}, "plugins.shop.max_items"),
    ("[plugins.shop]\nmax_items = 'many'\n", {}, "plugins.shop.max_items"),
    ("[plugins.shop]\ncolour = 'red'\n", {}, "plugins.shop.colour"),
    (None, {"PROPMUBI_PLUGINS__SHOP__LIVE": "perhaps"}, "plugins.shop.live"),
    (None, {"PROPMUBI_PLUGINS__SHOP__COLOUR": "red"}, "plugins.shop.colour"),
])
def test_bad_plugin_settings_name_the_key(tmp_path: Path, toml: str | None,
                                          env: dict[str, str], key: str) -> None:
    config = load(tmp_path, toml, env)
    with pytest.raises(ConfigError) as info:
        load_plugins(config, extra=[shop_plugin()])
    assert str(info.value).startswith(f"{key}:"), info.value


def test_settings_for_a_plugin_that_is_not_installed(tmp_path: Path) -> None:
    for config in (load(tmp_path, "[plugins.nosuch]\nx = 1\n"),
                   load(tmp_path, env={"PROPMUBI_PLUGINS__NOSUCH__X": "1"}),
                   load(tmp_path, credentials={"plugins.nosuch.x": "1"})):
        with pytest.raises(PluginError, match=r"plugins\.nosuch"):
            load_plugins(config, extra=[shop_plugin()])


def test_settings_for_a_plugin_without_a_settings_class(tmp_path: Path) -> None:
    config = load(tmp_path, "[plugins.shop]\ncurrency = 'EUR'\n")
    with pytest.raises(ConfigError, match=r"^plugins\.shop\.currency: .*no settings"):
        load_plugins(config, extra=[shop_plugin(settings=None)])


def test_settings_of_a_disabled_plugin_are_kept_but_not_checked(tmp_path: Path) -> None:
    config = load(tmp_path, "[plugins]\nenabled = ['core']\n[plugins.shop]\nmax_items = 0\n")
    plugins = load_plugins(config, extra=[shop_plugin()])
    assert "shop" not in plugins
    assert config.plugins.settings == {"shop": {"max_items": 0}}


def test_plugin_settings_function(tmp_path: Path) -> None:
    config = load(tmp_path, "[plugins.shop]\nmax_items = '4'\n")
    assert plugin_settings(config, "shop", ShopSettings).max_items == 4
    assert plugin_settings(config, "other", ShopSettings) == ShopSettings()


def test_a_settings_class_that_is_not_attrs(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="attrs class"):
        load_plugins(load(tmp_path), extra=[shop_plugin(settings=dict)])


# -------------------------------------------------------------------------------------------------
# Redaction
# -------------------------------------------------------------------------------------------------


def test_redacted_hides_passwords_and_keeps_hosts(tmp_path: Path) -> None:
    config = load(tmp_path, env={
        "PROPMUBI_DATABASE__URL": "postgresql://app:s3cret@db.internal:5432/propmubi",
        "PROPMUBI_DATABASE__REPLICA_URL":
            "postgresql://app@/propmubi?host=/run/postgresql&password=s3cret",
        "PROPMUBI_REDIS__URL": "redis://:s3cret@cache.internal:6379/0",
    })
    data = redacted(config)
    text = json.dumps(data)
    assert "s3cret" not in text
    assert data["database"]["url"] == "postgresql://app:***@db.internal:5432/propmubi"
    assert data["database"]["replica_url"] == \
        "postgresql://app@/propmubi?host=/run/postgresql&password=***"
    assert data["redis"]["url"] == "redis://:***@cache.internal:6379/0"
    # Non-secrets are shown as they are.
    assert data["http"]["port"] == 8080
    assert data["redis"]["key_prefix"] == "propmubi:"
    assert set(data) == {f.name for f in attrs.fields(Config)} - {"source"}


@pytest.mark.parametrize(("section", "url", "shown"), [
    ("database", "", ""),
    ("database", "postgresql://app@db/propmubi", "postgresql://app@db/propmubi"),
    ("redis", "unix:///run/redis/redis.sock", "unix:///run/redis/redis.sock"),
    ("redis", "rediss://default:pw@cache:6380/1", "rediss://default:***@cache:6380/1"),
    ("database", "dbname=propmubi password=s3cret", "***"),
    ("database", "postgresql://app:p%40ss@[::1]:5432/db?sslmode=require",
     "postgresql://app:***@[::1]:5432/db?sslmode=require"),
])
def test_redacted_urls(section: str, url: str, shown: str) -> None:
    config = Config().evolve(**{section: {"url": url}})
    assert redacted(config)[section]["url"] == shown


def test_redacted_empty_secrets_stay_empty() -> None:
    data = redacted(Config())
    assert data["database"]["url"] == ""
    assert data["database"]["replica_url"] == ""
    assert data["redis"]["url"] == ""


def test_redacted_plugin_settings(tmp_path: Path) -> None:
    config = load(tmp_path, "[plugins.shop]\napi_key = 'k-123'\ncurrency = 'EUR'\n"
                  "webhook_url = 'https://u:pw@hooks.example/x'\n")
    plugins = load_plugins(config, extra=[shop_plugin()])
    data = redacted(config, {p.name: p.settings for p in plugins if p.settings})
    shop = data["plugins"]["settings"]["shop"]
    assert shop["api_key"] == "***"
    assert shop["webhook_url"] == "https://u:***@hooks.example/x"
    assert shop["currency"] == "EUR"
    assert shop["max_items"] == 10  # the effective value, default included
    # Without the plugin's class nothing says which keys are secret: every value is hidden.
    blind = redacted(config)["plugins"]["settings"]["shop"]
    assert blind["api_key"] == "***" and blind["currency"] == "***"
    assert "k-123" not in json.dumps(blind)


def test_redacted_nested_plugin_settings_and_secret_lists() -> None:
    from propmubi_plugins.payments.providers.settings import RazorpaySettings
    from propmubi_plugins.payments.settings import PaymentsSettings

    settings = PaymentsSettings(razorpay=RazorpaySettings(
        key_id="rzp_live_1", key_secret="top-secret", webhook_secrets=("old-s", "new-s")))
    data = redacted(Config(), {"payments": settings})
    razorpay = data["plugins"]["settings"]["payments"]["razorpay"]
    assert razorpay["key_id"] == "rzp_live_1"
    assert razorpay["key_secret"] == "***"
    assert razorpay["webhook_secrets"] == ["***", "***"]
    assert "top-secret" not in str(data) and "old-s" not in str(data)


def test_nested_plugin_keys_from_the_environment_and_credential_files(tmp_path: Path) -> None:
    from propmubi_plugins.payments.settings import PaymentsSettings

    config = load_config(environ={"PROPMUBI_PLUGINS__PAYMENTS__RAZORPAY__KEY_SECRET": "s1"},
                         use_default_path=False)
    assert plugin_settings(config, "payments", PaymentsSettings).razorpay.key_secret == "s1"
    (tmp_path / "plugins.payments.razorpay.key_secret").write_text("s2\n")
    config = load_config(environ={"CREDENTIALS_DIRECTORY": str(tmp_path)},
                         use_default_path=False)
    assert plugin_settings(config, "payments", PaymentsSettings).razorpay.key_secret == "s2"


def test_several_webhook_secrets_in_one_variable_during_a_rotation() -> None:
    from propmubi_plugins.payments.settings import PaymentsSettings

    config = load_config(environ={
        "PROPMUBI_PLUGINS__PAYMENTS__STRIPE__WEBHOOK_SECRETS": "whsec_new, whsec_old"},
        use_default_path=False)
    settings = plugin_settings(config, "payments", PaymentsSettings)
    assert settings.stripe.webhook_secrets == ("whsec_new", "whsec_old")
