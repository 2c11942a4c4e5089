"""What the auth plugin refuses at start, and the development key generator."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from propmubi.config import ConfigError
from propmubi.lifecycle import open_services
from propmubi.plugins import load_plugins
from propmubi_plugins.auth.settings import generate_pii_key, generate_signing_key
from propmubi_plugins.auth.state import AuthState
from propmubi_plugins.auth.tokens import KeyRing
from tests.plugins.auth.conftest import AUTH_SETTINGS


def with_auth(config, environment, **settings):
    return config.evolve(app={"environment": environment},
                         plugins={"settings": {"auth": settings}})


@pytest.mark.parametrize("settings, missing", [
    ({}, "signing_key"),
    ({"signing_key": AUTH_SETTINGS["signing_key"]}, "otp_secret"),
])
async def test_production_refuses_to_start_without_secrets(migrated, extra_plugins, settings,
                                                           missing):
    config = with_auth(migrated, "production", **settings)
    with pytest.raises(ConfigError, match=rf"plugins\.auth\.{missing}"):
        async with open_services(config, load_plugins(config, extra=extra_plugins)):
            pass


async def test_production_refuses_to_send_codes_through_a_console_provider(migrated,
                                                                          extra_plugins):
    # Codes go out through the notifications plugin's SMS providers; its console_sms (the
    # default) only logs them and refuses to run in production.
    config = migrated.evolve(app={"environment": "production"}, plugins={"settings": {
        "auth": {**AUTH_SETTINGS, "pii_key": generate_pii_key()},
        "notifications": {"unsubscribe_secret": "s" * 32,
                          "public_url": "https://propmubi.example"}}})
    with pytest.raises(ConfigError, match=r"console_sms.*refused in production"):
        async with open_services(config, load_plugins(config, extra=extra_plugins)):
            pass


async def test_development_runs_without_configured_secrets(migrated, extra_plugins):
    config = with_auth(migrated, "development")
    async with open_services(config, load_plugins(config, extra=extra_plugins)):
        pass


def test_unknown_region_is_a_config_error(config, extra_plugins):
    bad = config.evolve(plugins={"settings": {"auth": {"default_region": "XX"}}})
    with pytest.raises(ConfigError, match=r"plugins\.auth\.default_region"):
        load_plugins(bad, extra=extra_plugins)


def test_generated_signing_keys_are_p256_pem():
    pem = generate_signing_key()
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert pem != generate_signing_key()


def test_other_key_types_are_refused():
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    with pytest.raises(ValueError, match="P-256"):
        KeyRing(rsa_pem, [], issuer="i", audience="a", ttl=60)


async def test_startup_puts_the_state_in_the_context(services):
    ctx = services.context("auth")
    assert isinstance(ctx.state, AuthState)
    assert ctx.settings.signing_key == AUTH_SETTINGS["signing_key"]
    assert ctx.state.keyring.jwks()["keys"][0]["kid"] == ctx.state.keyring.kid
    assert len(ctx.state.keyring.public) == 2  # the signing key and the previous public one
    assert ctx.state.otp_secret == AUTH_SETTINGS["otp_secret"].encode()
    assert (ctx.state.per_phone.count, ctx.state.per_ip.count) == (3, 20)
    assert ctx.state.pii.current_id == "k1"
