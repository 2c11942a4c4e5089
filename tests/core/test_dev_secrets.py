"""`propmubi dev` generates the secrets plugins ask for, once, outside the repository."""

import stat

import attrs

from propmubi import hookimpl
from propmubi.config import dev_secret, load_config
from propmubi.dev import ensure_dev_secrets
from propmubi.plugins import load_plugins
from propmubi.redaction import redacted
from propmubi.types import PluginInfo


@attrs.frozen
class SigningSettings:
    signing_key: str = attrs.field(default="", metadata=dev_secret())
    issuer: str = "propmubi"


class SigningPlugin:
    @hookimpl
    def propmubi_plugin_info(self):
        return PluginInfo(name="signing")

    @hookimpl
    def propmubi_settings_class(self):
        return SigningSettings


def settings_with(environ):
    # Only the test plugin: installed domain plugins have dev secrets of their own.
    config = load_config(environ=environ, use_default_path=False).evolve(
        plugins={"enabled": ["signing"]})
    return config, load_plugins(config, extra=[SigningPlugin()]).get("signing").settings


def test_secrets_are_generated_once_and_read_back(tmp_path):
    folder = tmp_path / "var" / "credentials"
    config, settings = settings_with({})
    assert settings.signing_key == ""
    plugins = load_plugins(config, extra=[SigningPlugin()])

    assert ensure_dev_secrets(plugins, folder) == ["plugins.signing.signing_key"]
    path = folder / "plugins.signing.signing_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    first = path.read_text()
    assert len(first) >= 40

    # A second run keeps the secret.
    assert ensure_dev_secrets(plugins, folder) == []
    assert path.read_text() == first

    config, settings = settings_with({"CREDENTIALS_DIRECTORY": str(folder)})
    assert settings.signing_key == first
    shown = redacted(config, {"signing": settings})
    assert first not in str(shown)


def test_a_configured_secret_is_not_replaced(tmp_path):
    config, _ = settings_with({"PROPMUBI_PLUGINS__SIGNING__SIGNING_KEY": "from-env"})
    plugins = load_plugins(config, extra=[SigningPlugin()])
    assert ensure_dev_secrets(plugins, tmp_path) == []
    assert not any(tmp_path.iterdir())
