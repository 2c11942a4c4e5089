"""Object storage as a core service: the local backend (atomic files under one folder, no way
out of it), the ``[storage]`` section, the backend chosen by name (the core's, or a plugin's
through ``propmubi_storage_backends``), and ``ctx.storage``.

The ``/media/{key}`` route that serves the catalogue's objects is tested with the catalogue
(tests/plugins/catalog/test_media_serving.py); the S3 backend in test_storage_s3.py.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

import tests.refplugin
from propmubi import hookimpl
from propmubi.config import ConfigError, StorageSection, load_config
from propmubi.lifecycle import open_services
from propmubi.plugins import load_plugins
from propmubi.redaction import redacted
from propmubi.storage import (
    InvalidKey,
    LocalStorage,
    S3Storage,
    StoredObject,
    backends,
    check_key,
    create_storage,
)
from propmubi.types import PluginInfo


@pytest.fixture
def config_overrides(tmp_path: Path) -> dict[str, Any]:
    """Objects of this module's processes under the test's own folder, never ./var/media."""
    return {"storage": {"local_dir": str(tmp_path / "media")}}


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects")


async def test_put_get_delete(local, tmp_path):
    await local.put("projects/p1/photos/x/web-1.webp", b"one", "image/webp")
    got = await local.get("projects/p1/photos/x/web-1.webp")
    assert (got.data, got.content_type) == (b"one", "image/webp")
    assert got.etag.startswith('"') and got.etag.endswith('"')
    await local.put("projects/p1/photos/x/web-1.webp", b"two", "image/webp")  # replaced whole
    assert (await local.get("projects/p1/photos/x/web-1.webp")).data == b"two"
    await local.delete("projects/p1/photos/x/web-1.webp")
    await local.delete("projects/p1/photos/x/web-1.webp")  # idempotent
    assert await local.get("projects/p1/photos/x/web-1.webp") is None
    # Emptied folders go too, the root stays.
    assert list((tmp_path / "objects").iterdir()) == []


async def test_delete_prefix_takes_exactly_the_prefix(local):
    for key in ("projects/a/photos/1/o.jpg", "projects/a/units/u/photos/2/t.webp",
                "projects/ab/photos/3/o.jpg", "projects/b/photos/4/o.jpg"):
        await local.put(key, b"x", "image/jpeg")
    assert await local.delete_prefix("projects/a/") == 2
    assert await local.delete_prefix("projects/a/") == 0  # idempotent
    assert await local.get("projects/ab/photos/3/o.jpg") is not None  # "a" is not "ab"
    assert await local.get("projects/b/photos/4/o.jpg") is not None
    with pytest.raises(InvalidKey):
        await local.delete_prefix("projects")  # a prefix is a folder
    with pytest.raises(InvalidKey):
        await local.delete_prefix("/")


async def test_writes_are_atomic_and_leave_no_temporary_files(local, tmp_path):
    data = os.urandom(256 * 1024)
    await asyncio.gather(*(local.put("projects/p/photos/1/o.jpg", data, "image/jpeg")
                           for _ in range(8)))
    files = [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["o.jpg"]
    assert files[0].read_bytes() == data


@pytest.mark.parametrize("key", [
    "../etc/passwd", "projects/../../etc/passwd", "/etc/passwd", "projects//x", "projects/./x",
    "projects/x/", "", "projects\\..\\x", "projects/.hidden", "projects/x\x00y", "a" * 600,
    "projects/%2e%2e/x", "projects/ü",
])
async def test_keys_cannot_leave_the_folder(local, key):
    with pytest.raises(InvalidKey):
        check_key(key)
    with pytest.raises(InvalidKey):
        await local.put(key, b"x", "image/jpeg")
    with pytest.raises(InvalidKey):
        await local.get(key)


# -- the [storage] section ------------------------------------------------------------------------


@pytest.mark.parametrize(("environ", "message"), [
    ({"PROPMUBI_STORAGE__BACKEND": "s3"}, "storage.s3_bucket: required"),
    ({"PROPMUBI_STORAGE__BACKEND": " "}, "storage.backend: must not be empty"),
    ({"PROPMUBI_STORAGE__S3_ENDPOINT_URL": "minio.internal:9000"}, "storage.s3_endpoint_url: "),
    ({"PROPMUBI_STORAGE__S3_PUBLIC_BASE_URL": "cdn.example"}, "storage.s3_public_base_url: "),
    # The catalogue's old names are not storage keys.
    ({"PROPMUBI_STORAGE__MEDIA_DIR": "/srv"}, "PROPMUBI_STORAGE__MEDIA_DIR: unknown key"),
])
def test_bad_storage_settings_name_their_key(environ, message):
    with pytest.raises(ConfigError) as caught:
        load_config(environ=environ, use_default_path=False)
    assert str(caught.value).startswith(message)


def test_the_s3_backend_needs_a_bucket():
    with pytest.raises(ConfigError, match=r"storage\.s3_bucket: required"):
        load_config(environ={"PROPMUBI_STORAGE__BACKEND": "s3"}, use_default_path=False)
    config = load_config(environ={"PROPMUBI_STORAGE__BACKEND": "s3",
                                  "PROPMUBI_STORAGE__S3_BUCKET": "media"},
                         use_default_path=False)
    assert config.storage.s3_bucket == "media"


def test_the_s3_secret_is_a_credential_and_masked(tmp_path):
    (tmp_path / "storage.s3_secret_access_key").write_text("s3cret\n")
    config = load_config(environ={"CREDENTIALS_DIRECTORY": str(tmp_path)},
                         use_default_path=False)
    assert config.storage.s3_secret_access_key == "s3cret"
    shown = redacted(config)["storage"]
    assert shown["s3_secret_access_key"] != "s3cret"
    assert shown["s3_bucket"] == "" and shown["backend"] == "local"


def test_the_s3_backend_is_built_from_the_section(plugins, config):
    config = config.evolve(storage={"backend": "s3", "s3_bucket": "media",
                                    "s3_endpoint_url": "http://127.0.0.1:9/",
                                    "s3_region": "eu-west-1", "s3_access_key_id": "id",
                                    "s3_secret_access_key": "key",
                                    "s3_public_base_url": "https://cdn.example/m/"})
    backend = create_storage(config, plugins)
    assert isinstance(backend, S3Storage)
    assert (backend.bucket, backend.region, backend.endpoint_url) == \
        ("media", "eu-west-1", "http://127.0.0.1:9/")
    assert (backend.access_key_id, backend.secret_access_key) == ("id", "key")
    assert backend.url("projects/p/x.webp") == "https://cdn.example/m/projects/p/x.webp"


@pytest.mark.parametrize("config_overrides", [{}])
async def test_the_local_backend_defaults_to_var_media(services, config):
    backend = services.storage
    assert isinstance(backend, LocalStorage)
    assert backend.root == (Path(config.app.var_dir) / "media").resolve()
    assert backend.url("projects/p/x.webp") == "/media/projects/p/x.webp"


def test_the_local_backend_uses_local_dir(plugins, config, tmp_path):
    backend = create_storage(config.evolve(storage={"local_dir": str(tmp_path / "m")}), plugins)
    assert isinstance(backend, LocalStorage)
    assert backend.root == (tmp_path / "m").resolve()


async def test_a_plugin_context_storage_is_the_process_storage(services, tmp_path):
    assert services.contexts  # the core's plugins, the installed ones and the reference one
    for ctx in services.contexts.values():
        assert ctx.storage is services.storage
    ctx = services.context("reference")
    await ctx.storage.put("reference/notes/1.txt", b"note", "text/plain")
    assert (await services.storage.get("reference/notes/1.txt")).data == b"note"
    assert (tmp_path / "media" / "reference" / "notes" / "1.txt").read_bytes() == b"note"


# -- backends by name -----------------------------------------------------------------------------


class MemoryStorage:
    """A plugin's backend: objects in a dict; says when it is opened and closed."""

    def __init__(self, section: StorageSection, log: list[str]) -> None:
        self.section = section
        self.log = log
        self.objects: dict[str, bytes] = {}

    async def open(self) -> None:
        self.log.append("storage open")

    async def close(self) -> None:
        self.log.append("storage close")

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self.objects[check_key(key)] = data

    async def get(self, key: str) -> StoredObject | None:
        data = self.objects.get(check_key(key))
        return None if data is None else StoredObject(data, "application/octet-stream", '"x"')

    async def delete(self, key: str) -> None:
        self.objects.pop(check_key(key), None)

    async def delete_prefix(self, prefix: str) -> int:
        gone = [k for k in self.objects if k.startswith(prefix)]
        for key in gone:
            del self.objects[key]
        return len(gone)

    def url(self, key: str) -> str:
        return f"memory:{key}"


class MemoryPlugin:
    """Offers the ``memory`` backend; its cleanup notes whether storage was still open."""

    def __init__(self, offers: str = "memory") -> None:
        self.offers = offers
        self.log: list[str] = []

    @hookimpl
    def propmubi_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="memory_store")

    @hookimpl
    def propmubi_storage_backends(self) -> dict[str, Any]:
        return {self.offers: lambda section: MemoryStorage(section, self.log)}

    @hookimpl
    def propmubi_startup(self, ctx: Any) -> None:
        self.log.append("plugin startup")

    @hookimpl
    def propmubi_cleanup(self, ctx: Any) -> None:
        self.log.append("plugin cleanup")


@pytest.fixture
def memory() -> MemoryPlugin:
    return MemoryPlugin()


@pytest.fixture
def extra_plugins(memory: MemoryPlugin) -> list[Any]:
    return [tests.refplugin, memory]


@pytest.mark.parametrize("config_overrides", [{"storage": {"backend": "memory"}}])
async def test_a_plugin_may_offer_the_backend(migrated, plugins, memory):
    async with open_services(migrated, plugins) as services:
        storage = services.storage
        assert isinstance(storage, MemoryStorage)
        assert services.context("reference").storage is storage
        # The factory gets the section, local_dir defaulted as for the local backend.
        assert storage.section.backend == "memory"
        assert storage.section.local_dir == str(Path(migrated.app.var_dir) / "media")
        await services.context("reference").storage.put("reference/a", b"1", "text/plain")
        assert storage.objects == {"reference/a": b"1"}
    # Opened after the pools and before the plugins start; closed after their cleanup.
    assert memory.log == ["storage open", "plugin startup", "plugin cleanup", "storage close"]


@pytest.mark.parametrize("config_overrides", [{"storage": {"backend": "ftp"}}])
async def test_an_unknown_backend_fails_at_start_naming_the_key(migrated, plugins, memory):
    with pytest.raises(ConfigError) as caught:
        async with open_services(migrated, plugins):
            pytest.fail("the services opened")
    assert str(caught.value) == ("storage.backend: nothing named 'ftp' is offered "
                                 "(offered: local, memory, s3)")
    assert memory.log == []  # refused before anything opened or started


def test_a_plugin_cannot_take_a_name_already_offered(config):
    plugins = load_plugins(config, extra=[tests.refplugin, MemoryPlugin(offers="s3")])
    with pytest.raises(ConfigError, match="offers the storage backend 's3', which the core"):
        backends(plugins)
