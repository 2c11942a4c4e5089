"""``propmubi staff ...`` run as a real process against the test's database, and the staff
account ``propmubi dev`` creates on its first run."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from propmubi.config import Config
from propmubi.console import accounts, store
from propmubi.dev import DEV_STAFF_EMAIL, DEV_STAFF_PASSWORD_FILE, ensure_dev_staff
from propmubi.testing import make_staff, sign_in

ROOT = Path(__file__).resolve().parents[2]


def staff(config: Config, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd),
           "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT),
           "PROPMUBI_DATABASE__URL": config.database.url,
           "PROPMUBI_REDIS__URL": config.redis.url,
           "PROPMUBI_REDIS__KEY_PREFIX": config.redis.key_prefix,
           "PROPMUBI_LOGGING__LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "propmubi", "staff", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


async def test_create_list_set_password_disable(migrated, services, tmp_path):
    created = staff(migrated, tmp_path, "create", "--email", "Ops@Example.com", "--name",
                    "Ops Person", "--role", "admin")
    assert created.returncode == 0, created
    password = re.search(r"^password: (\S+)$", created.stdout, re.M).group(1)
    assert len(password) >= 20
    user = await accounts.authenticate(services.db, "ops@example.com", password)
    assert user is not None and user.roles == ("admin",) and user.name == "Ops Person"

    again = staff(migrated, tmp_path, "create", "--email", "ops@EXAMPLE.com", "--name", "X")
    assert again.returncode != 0
    assert "already exists" in again.stderr and "Traceback" not in again.stderr

    bad_role = staff(migrated, tmp_path, "create", "--email", "b@example.com", "--name", "B",
                     "--role", "root")
    assert bad_role.returncode == 2 and "invalid choice: 'root'" in bad_role.stderr

    secret = tmp_path / "pw.txt"
    secret.write_text("a long enough password\n")
    from_file = staff(migrated, tmp_path, "create", "--email", "cy@example.com", "--name",
                      "Cy", "--password-file", str(secret))
    assert from_file.returncode == 0, from_file
    assert "password:" not in from_file.stdout
    assert await accounts.authenticate(services.db, "cy@example.com",
                                       "a long enough password") is not None

    secret.write_text("short\n")
    weak = staff(migrated, tmp_path, "set-password", "--email", "cy@example.com",
                 "--password-file", str(secret))
    assert weak.returncode != 0 and "at least 12 characters" in weak.stderr

    reset = staff(migrated, tmp_path, "set-password", "--email", "cy@example.com")
    assert reset.returncode == 0, reset
    new_password = re.search(r"^password: (\S+)$", reset.stdout, re.M).group(1)
    assert await accounts.authenticate(services.db, "cy@example.com", new_password)
    assert not await accounts.authenticate(services.db, "cy@example.com",
                                           "a long enough password")

    disabled = staff(migrated, tmp_path, "disable", "--email", "cy@example.com")
    assert disabled.returncode == 0, disabled
    assert await accounts.authenticate(services.db, "cy@example.com", new_password) is None
    missing = staff(migrated, tmp_path, "disable", "--email", "nobody@example.com")
    assert missing.returncode != 0 and "no staff account" in missing.stderr

    listed = staff(migrated, tmp_path, "list")
    assert listed.returncode == 0, listed
    lines = listed.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("cy@example.com") and "disabled" in lines[0]
    assert lines[1].startswith("Ops@Example.com") and "admin" in lines[1]
    assert "active" in lines[1]
    row = await store.by_email(services.db, "ops@example.com")
    assert row["password_hash"].startswith("$argon2id$")


async def test_set_password_and_disable_end_the_console_sessions(migrated, services, client,
                                                                tmp_path):
    await make_staff(services)
    assert (await sign_in(client)).status == 303
    assert (await client.get("/console/")).status == 200
    reset = staff(migrated, tmp_path, "set-password", "--email", "SAM@example.com")
    assert reset.returncode == 0, reset
    # The session signed in with the old password is over.
    assert (await client.get("/console/")).status == 401
    password = re.search(r"^password: (\S+)$", reset.stdout, re.M).group(1)
    assert (await sign_in(client, password=password)).status == 303
    assert (await client.get("/console/")).status == 200
    disabled = staff(migrated, tmp_path, "disable", "--email", "sam@example.com")
    assert disabled.returncode == 0, disabled
    assert (await client.get("/console/")).status == 401
    assert (await sign_in(client, password=password)).status == 401


async def test_dev_creates_one_admin_and_remembers_where_its_password_is(migrated, services,
                                                                         tmp_path):
    folder = tmp_path / "var" / "credentials"
    first = await ensure_dev_staff(migrated, folder)
    path = folder / DEV_STAFF_PASSWORD_FILE
    assert DEV_STAFF_EMAIL in first and str(path) in first
    password = path.read_text().strip()
    assert password in first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    user = await accounts.authenticate(services.db, DEV_STAFF_EMAIL, password)
    assert user is not None and user.roles == ("admin",)
    second = await ensure_dev_staff(migrated, folder)
    assert password not in second and str(path) in second
    assert path.read_text().strip() == password
    assert len(await store.list_all(services.db)) == 1
