"""Fakes shared by the tests (no I/O). Import as ``from fakes import MemStore`` (``tests/`` is on
``sys.path``: pytest puts the directory of ``tests/conftest.py`` there)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from pipeline.lake.store import ObjectInfo, PreconditionFailed, StoreError


class MemStore:
    """An in-memory :class:`~pipeline.lake.store.ObjectStore` with S3's conditional-write
    semantics (ETag = MD5 of the content). ``objects`` is the lake (tests may tamper with it),
    ``puts`` every successful put in order; set ``fail`` to make put/get/head raise it."""

    url = "mem://lake"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts: list[tuple[str, bytes]] = []
        self.fail: StoreError | None = None

    def put(self, key: str, data: bytes, *, if_none_match: bool = False,
            if_match: str | None = None) -> str:
        if self.fail is not None:
            raise self.fail
        current = self.objects.get(key)
        if if_none_match and current is not None:
            raise PreconditionFailed(key, "PreconditionFailed")
        if if_match is not None:
            if current is None:
                raise StoreError(key, "NoSuchKey")
            if etag(current) != if_match:
                raise PreconditionFailed(key, "PreconditionFailed")
        self.objects[key] = data
        self.puts.append((key, data))
        return etag(data)

    def get(self, key: str) -> bytes:
        if self.fail is not None:
            raise self.fail
        if key not in self.objects:
            raise StoreError(key, "NoSuchKey")
        return self.objects[key]

    def head(self, key: str) -> ObjectInfo | None:
        if self.fail is not None:
            raise self.fail
        data = self.objects.get(key)
        return None if data is None else ObjectInfo(key, len(data), etag(data))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for key in sorted(self.objects):
            if key.startswith(prefix):
                yield ObjectInfo(key, len(self.objects[key]), etag(self.objects[key]))

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)


def etag(data: bytes) -> str:
    """S3's ETag of a single-part upload: the MD5 of the content, in hex."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class Crash(Exception):
    """The process died (SIGKILL) at an injected point: nothing after it runs, nothing is
    committed."""
