"""Identity numbers at rest: AES-256-GCM, bound to their row, and key rotation."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import attrs
import pytest

from propmubi.config import ConfigError
from propmubi.lifecycle import open_services
from propmubi.plugins import load_plugins
from propmubi_plugins.auth import pii
from propmubi_plugins.auth.kyc import store as kyc_store
from propmubi_plugins.auth.settings import AuthSettings
from tests.plugins.auth.conftest import AUTH_SETTINGS
from tests.plugins.auth.test_kyc import PAN, PII_KEY, applicant, put

ROOT = Path(__file__).parents[3]
NEW_KEY = base64.b64encode(bytes(range(100, 132))).decode()
RECORD, USER = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
def auth_settings() -> dict[str, Any]:
    return {**AUTH_SETTINGS, "pii_key_id": "k1", "pii_key": PII_KEY}


def ring(current: str = "k1", **keys: str) -> pii.PiiKeyring:
    return pii.PiiKeyring(current, {k: pii.decode_key(v) for k, v in keys.items()})


def test_sealing_binds_row_user_and_kind_and_uses_fresh_nonces():
    keyring = ring(k1=PII_KEY)
    aad = pii.associated_data(RECORD, USER, "pan")
    one, two = keyring.seal(PAN, aad), keyring.seal(PAN, aad)
    assert one.nonce != two.nonce and one.ciphertext != two.ciphertext
    assert len(one.nonce) == 12 and PAN.encode() not in one.ciphertext
    assert keyring.open(one, aad) == PAN
    for other in (pii.associated_data(uuid.uuid4(), USER, "pan"),
                  pii.associated_data(RECORD, uuid.uuid4(), "pan"),
                  pii.associated_data(RECORD, USER, "aadhaar")):
        with pytest.raises(pii.PiiDecryptError):
            keyring.open(one, other)
    flipped = bytes([one.ciphertext[0] ^ 1]) + one.ciphertext[1:]
    with pytest.raises(pii.PiiDecryptError):
        keyring.open(pii.Sealed("k1", one.nonce, flipped), aad)
    with pytest.raises(pii.PiiDecryptError):
        keyring.open(pii.Sealed("k1", two.nonce, one.ciphertext), aad)


def test_old_keys_open_and_unknown_key_ids_say_so():
    aad = pii.associated_data(RECORD, USER, "pan")
    old = ring(k1=PII_KEY).seal(PAN, aad)
    rotated = ring("k2", k1=PII_KEY, k2=NEW_KEY)
    assert rotated.open(old, aad) == PAN
    assert rotated.seal(PAN, aad).key_id == "k2"
    with pytest.raises(pii.PiiKeyError, match=r"key id 'k1'.*pii_previous_keys"):
        ring("k2", k2=NEW_KEY).open(old, aad)


def test_masking():
    assert pii.mask(PAN) == "XXXXXX234F"
    assert pii.mask("234567890123") == "XXXXXXXX0123"
    assert pii.mask("123") == "123"


@pytest.mark.parametrize("settings, message", [
    ({"pii_key": "not base64!"}, "pii_key: not valid base64"),
    ({"pii_key": base64.b64encode(b"short").decode()}, "pii_key: decodes to 5 bytes"),
    ({"pii_key": PII_KEY, "pii_previous_keys": ["nocolon"]}, "pii_previous_keys: expected"),
    ({"pii_key": PII_KEY, "pii_previous_keys": [f"k1:{NEW_KEY}"]}, "current pii_key_id"),
])
def test_bad_keys_are_config_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        # Validators off: the keyring checks again what reaches it by other ways.
        with attrs.validators.disabled():
            bad = AuthSettings(**settings)
        pii.keyring_from_settings(bad, production=False)


def test_settings_validate_key_formats():
    with pytest.raises(ValueError, match="32"):
        AuthSettings(pii_key=base64.b64encode(b"x" * 16).decode())
    with pytest.raises(ValueError, match="key id"):
        AuthSettings(pii_key_id="bad id!")
    with pytest.raises(ValueError, match="id:base64key"):
        AuthSettings(pii_previous_keys=["k0"])


async def test_production_refuses_to_start_without_a_pii_key(migrated, extra_plugins):
    config = migrated.evolve(app={"environment": "production"},
                             plugins={"settings": {"auth": AUTH_SETTINGS}})
    with pytest.raises(ConfigError, match=r"plugins\.auth\.pii_key: required in production"):
        async with open_services(config, load_plugins(config, extra=extra_plugins)):
            pass


async def test_ciphertext_in_the_database_is_not_the_number(client, services):
    _, headers = await applicant(client, services)
    await put(client, headers)
    row = await services.db.fetchrow("SELECT key_id, nonce, ciphertext, masked "
                                     "FROM auth_kyc_numbers")
    assert row["key_id"] == "k1" and row["masked"] == "XXXXXX234F"
    assert PAN.encode() not in bytes(row["ciphertext"])
    dump = await services.db.fetchval("SELECT row_to_json(n)::text FROM auth_kyc_numbers n")
    assert PAN not in dump


def run_cli(config: Any, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """``python -m propmubi ...`` as an operator runs it, on this test's database."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "PYTHONPATH": str(ROOT), "PROPMUBI_DATABASE__URL": config.database.url,
           "PROPMUBI_REDIS__URL": config.redis.url,
           "PROPMUBI_REDIS__KEY_PREFIX": config.redis.key_prefix,
           "PROPMUBI_LOGGING__LEVEL": "WARNING",
           # Auth sends its codes through the notifications plugin's SMS providers.
           "PROPMUBI_PLUGINS__ENABLED": "auth,notifications"}
    known = {k: AUTH_SETTINGS[k] for k in ("signing_key", "otp_secret")}
    for key, value in {**known, **settings}.items():
        env[f"PROPMUBI_PLUGINS__AUTH__{key.upper()}"] = value
    return subprocess.run([sys.executable, "-m", "propmubi", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


async def test_rotate_pii_key_reencrypts_every_row(client, services, config):
    for n, phone in enumerate(("+919812345678", "+919812345679", "+919812345670")):
        _, headers = await applicant(client, services, roles=("agent", "builder"), phone=phone)
        await put(client, headers)
        await put(client, headers, role="builder", rera_number=f"A5180001234{n}")
    before = {(r["record_id"], r["kind"]): bytes(r["ciphertext"]) for r in await services.db.fetch(
        "SELECT record_id, kind, ciphertext FROM auth_kyc_numbers")}
    assert len(before) == 9

    # The new key is current; the old one is still known: everything moves, in batches of 4.
    result = run_cli(config, "auth", "rotate-pii-key", "--batch", "4", PII_KEY_ID="k2",
                     PII_KEY=NEW_KEY, PII_PREVIOUS_KEYS=f"k1:{PII_KEY}")
    assert result.returncode == 0, result
    assert result.stdout.strip() == ("re-encrypted 9 numbers under key k2 in 3 batches; "
                                     "9 numbers under k2, 0 under older keys")
    assert await kyc_store.key_id_counts(services.db) == {"k2": 9}
    rows = await services.db.fetch("SELECT record_id, kind, key_id, nonce, ciphertext, "
                                   "(SELECT user_id FROM auth_kyc_records r "
                                   " WHERE r.id = n.record_id) AS user_id FROM auth_kyc_numbers n")
    only_new = ring("k2", k2=NEW_KEY)
    for row in rows:
        assert bytes(row["ciphertext"]) != before[(row["record_id"], row["kind"])]
        sealed = pii.Sealed(row["key_id"], bytes(row["nonce"]), bytes(row["ciphertext"]))
        number = only_new.open(sealed, pii.associated_data(row["record_id"], row["user_id"],
                                                           row["kind"]))
        assert number == PAN or number.startswith("A518")
    again = run_cli(config, "auth", "rotate-pii-key", PII_KEY_ID="k2", PII_KEY=NEW_KEY)
    assert again.returncode == 0 and "re-encrypted 0 numbers" in again.stdout


async def test_rotate_without_the_old_key_names_the_missing_key_id(client, services, config):
    _, headers = await applicant(client, services)
    await put(client, headers)
    result = run_cli(config, "auth", "rotate-pii-key", PII_KEY_ID="k3", PII_KEY=NEW_KEY)
    assert result.returncode == 1, result
    assert "re-encrypted 0 numbers under key k3" in result.stdout
    assert "key id 'k1', which is not configured" in result.stderr
    assert await kyc_store.key_id_counts(services.db) == {"k1": 1}  # untouched
