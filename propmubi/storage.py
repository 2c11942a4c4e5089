"""Object storage, one of the services every process shares: ``local`` and ``s3`` backends.

The core opens one backend per process (:func:`propmubi.lifecycle.open_services`), chosen by
``[storage] backend``: ``local`` and ``s3`` are the core's own, and a plugin may offer more
through ``propmubi_storage_backends``. Plugins reach it as ``ctx.storage``.

A backend stores immutable objects under keys such as
``projects/<id>/photos/<id>/web-<hash>.webp``. Every plugin's keys start with a top-level folder
it owns (the catalogue's are ``projects/...``), so that plugins never overwrite or delete each
other's objects. Keys are content-addressed (or carry an id), so an object never changes once
written and may be cached forever. A backend is an object with this interface
(:class:`Storage`)::

    await storage.open()                        # before first use (open_services does it)
    await storage.put(key, data, content_type)
    await storage.get(key) -> StoredObject | None
    await storage.delete(key)                   # idempotent
    await storage.delete_prefix(prefix) -> int  # idempotent; how many objects went
    storage.url(key) -> str                     # where clients fetch it
    await storage.close()

Keys are checked by :func:`check_key`: no empty, ``.`` or ``..`` segments, no backslashes, a
small alphabet; a key can therefore never name a file outside the local backend's folder.
Objects without a public URL are served at ``/media/<key>`` (:func:`media_path`) by the plugin
that owns the route.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from propmubi.config import Config, ConfigError, StorageSection

if TYPE_CHECKING:
    from propmubi.pluginset import PluginSet

__all__ = ["MEDIA_PATH", "BackendFactory", "InvalidKey", "LocalStorage", "S3Storage", "Storage",
           "StoredObject", "backends", "check_key", "check_prefix", "content_type_of",
           "create_storage", "effective_section", "media_path"]

#: Path under the site root where objects are served when no public base URL is set.
MEDIA_PATH = "/media/"
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT}){{0,15}}")


class InvalidKey(ValueError):
    """A key that names nothing a backend could hold (and might escape its folder)."""


def check_key(key: str) -> str:
    """Return ``key`` if it is a well-formed object key.

    :raises InvalidKey: otherwise (traversal, absolute paths, odd characters, too long).
    """
    if len(key) > 512 or not _KEY.fullmatch(key) or ".." in key.split("/"):
        raise InvalidKey(f"not a valid object key: {key[:80]!r}")
    return key


def check_prefix(prefix: str) -> str:
    """A prefix is a key followed by ``/`` (a folder): deleting ``""`` or ``"projects"`` would
    take far more than one project."""
    if not prefix.endswith("/"):
        raise InvalidKey(f"a prefix ends with '/': {prefix[:80]!r}")
    check_key(prefix[:-1])
    return prefix


def media_path(key: str) -> str:
    """The site path that serves ``key`` (a ``/media/{key}`` route)."""
    return MEDIA_PATH + key


@attrs.frozen
class StoredObject:
    """An object read back: its bytes, content type and an entity tag."""

    data: bytes
    content_type: str
    etag: str


class Storage(Protocol):
    """What every storage backend offers (see the module docstring)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> StoredObject | None: ...

    async def delete(self, key: str) -> None: ...

    async def delete_prefix(self, prefix: str) -> int: ...

    def url(self, key: str) -> str: ...


#: What ``propmubi_storage_backends`` maps a name to: builds (does not open) a backend from the
#: ``[storage]`` section.
BackendFactory = Callable[[StorageSection], Storage]


def _etag(data: bytes) -> str:
    return '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


# -------------------------------------------------------------------------------------------------
# local: files under a folder, served by the web process
# -------------------------------------------------------------------------------------------------

_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


def content_type_of(key: str) -> str:
    """The content type a key's extension stands for."""
    return _TYPES.get(os.path.splitext(key)[1].lower(), "application/octet-stream")


class LocalStorage:
    """Files under one folder. Writes are atomic (a temporary file in the same folder, fsynced,
    then renamed), so a reader never sees half an object; file I/O runs off the event loop."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, key: str) -> Path:
        """The file of ``key``, guaranteed to be inside the root.

        :raises InvalidKey: for a malformed key.
        """
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):  # belt and braces: check_key already refuses
            raise InvalidKey(f"not a valid object key: {key[:80]!r}")
        return path

    async def open(self) -> None:
        """Nothing to open: the folder is made on the first write."""

    async def close(self) -> None:
        """Nothing to close."""

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write the object atomically."""
        await asyncio.to_thread(self._put, self.path(key), data)

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    async def get(self, key: str) -> StoredObject | None:
        """The object, or None when there is none."""
        path = self.path(key)

        def read() -> StoredObject | None:
            try:
                data = path.read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return None
            return StoredObject(data=data, content_type=content_type_of(key), etag=_etag(data))

        return await asyncio.to_thread(read)

    async def delete(self, key: str) -> None:
        """Remove the object; nothing happens when it is already gone."""
        path = self.path(key)

        def remove() -> None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self._prune(path.parent)

        await asyncio.to_thread(remove)

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix`` (``projects/<id>/``); returns how many."""
        folder = self.path(check_prefix(prefix)[:-1])

        def remove() -> int:
            if not folder.is_dir():
                return 0
            count = 0
            # Files first, deepest folders last; a concurrent writer's new file survives
            # (its folder is then kept), which is what an idempotent re-run tidies up.
            for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
                for name in filenames:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(dirpath, name))
                        if not name.startswith(".tmp-"):
                            count += 1
                for name in dirnames:
                    with contextlib.suppress(OSError):
                        os.rmdir(os.path.join(dirpath, name))
            with contextlib.suppress(OSError):
                folder.rmdir()
            self._prune(folder.parent)
            return count

        return await asyncio.to_thread(remove)

    def _prune(self, folder: Path) -> None:
        # Empty folders left by deletions go too, up to (never including) the root.
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def url(self, key: str) -> str:
        """``/media/<key>``, served by the web process."""
        return media_path(key)


def _local(section: StorageSection) -> LocalStorage:
    return LocalStorage(Path(section.local_dir))


# -------------------------------------------------------------------------------------------------
# s3: any S3-compatible service through aiobotocore
# -------------------------------------------------------------------------------------------------


class S3Storage:
    """Objects in one bucket of an S3-compatible service (AWS, MinIO, R2, Ceph...).

    One client per process, opened with the services: with explicit credentials that sends
    nothing over the network; without them the AWS credential chain runs. Checksums are only
    sent where the service requires them: several S3-compatible services refuse the newer
    default CRC headers.
    """

    def __init__(self, *, bucket: str, region: str, endpoint_url: str | None,
                 access_key_id: str | None, secret_access_key: str | None,
                 public_base_url: str = "") -> None:
        self.bucket = bucket
        self.region = region
        self.endpoint_url = endpoint_url or None
        self.access_key_id = access_key_id or None
        self.secret_access_key = secret_access_key or None
        self.public_base_url = public_base_url.rstrip("/")
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    async def open(self) -> None:
        """Create the client."""
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        if self._client is not None:
            return
        config = AioConfig(
            signature_version="s3v4",
            # Path-style addressing for custom endpoints: MinIO and friends rarely have
            # per-bucket host names.
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5, read_timeout=30)
        stack = contextlib.AsyncExitStack()
        self._client = await stack.enter_async_context(get_session().create_client(
            "s3", region_name=self.region, endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key, config=config))
        self._stack = stack

    async def close(self) -> None:
        """Close the client's connections."""
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("the S3 storage backend is not open (open_services opens it)")
        return self._client

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Upload the object, marked immutable for caches in front of the bucket."""
        await self.client.put_object(
            Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type,
            CacheControl="public, max-age=31536000, immutable")

    async def get(self, key: str) -> StoredObject | None:
        """The object, or None when there is none."""
        try:
            response = await self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except self.client.exceptions.NoSuchKey:
            return None
        async with response["Body"] as stream:
            data: bytes = await stream.read()
        return StoredObject(data=data,
                            content_type=response.get("ContentType") or content_type_of(key),
                            etag=response.get("ETag") or _etag(data))

    async def delete(self, key: str) -> None:
        """Remove the object (S3 answers success for a missing key too)."""
        await self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``, a thousand per request; returns how many."""
        check_prefix(prefix)
        count = 0
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
            if not keys:
                continue
            answer = await self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
            errors = answer.get("Errors") or []
            if errors:
                first = errors[0]
                raise OSError(f"S3 refused to delete {len(errors)} objects under {prefix}: "
                              f"{first.get('Code')} {first.get('Message')}")
            count += len(keys)
        return count

    def url(self, key: str) -> str:
        """Under ``storage.s3_public_base_url`` (a CDN, say), else ``/media/<key>`` through the
        web process."""
        if self.public_base_url:
            return f"{self.public_base_url}/{key}"
        return media_path(key)


def _s3(section: StorageSection) -> S3Storage:
    if not section.s3_bucket:  # the section's validator refuses this already
        raise ConfigError("storage.s3_bucket: required with backend = \"s3\"")
    return S3Storage(bucket=section.s3_bucket, region=section.s3_region,
                     endpoint_url=section.s3_endpoint_url,
                     access_key_id=section.s3_access_key_id,
                     secret_access_key=section.s3_secret_access_key,
                     public_base_url=section.s3_public_base_url)


# -------------------------------------------------------------------------------------------------
# Choosing the backend
# -------------------------------------------------------------------------------------------------

#: The core's own backends.
CORE_BACKENDS: dict[str, BackendFactory] = {"local": _local, "s3": _s3}


def backends(plugins: PluginSet) -> dict[str, BackendFactory]:
    """Backend name -> factory: the core's ``local`` and ``s3``, and those the enabled plugins
    offer through ``propmubi_storage_backends``.

    :raises ConfigError: two of them use the same name.
    """
    offered = dict(CORE_BACKENDS)
    owners = dict.fromkeys(offered, "the core")
    for plugin, factories in plugins.call("propmubi_storage_backends"):
        for name, factory in factories.items():
            if name in owners:
                raise ConfigError(f"plugin {plugin.name!r} offers the storage backend {name!r}, "
                                  f"which {owners[name]} offers already")
            offered[name], owners[name] = factory, f"plugin {plugin.name!r}"
    return offered


def effective_section(config: Config) -> StorageSection:
    """``[storage]`` as the process uses it: ``local_dir`` defaults to ``<app.var_dir>/media``."""
    section = config.storage
    if section.local_dir:
        return section
    return attrs.evolve(section, local_dir=str(Path(config.app.var_dir) / "media"))


def create_storage(config: Config, plugins: PluginSet) -> Storage:
    """Build (not open) the backend named by ``storage.backend``.

    :raises ConfigError: nothing offers that name (the message lists what is offered), or its
        factory refuses the section.
    """
    offered = backends(plugins)
    name = config.storage.backend
    if name not in offered:
        raise ConfigError(f"storage.backend: nothing named {name!r} is offered "
                          f"(offered: {', '.join(sorted(offered))})")
    return offered[name](effective_section(config))
