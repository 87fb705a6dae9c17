"""Object storage for the lake: S3 (any endpoint) or a local directory, behind one interface.

Keys are relative to the lake URL (``s3://bucket/prefix`` or ``file:///path``). Writes are
atomic (a reader never sees half an object). ``put`` supports conditional writes so that
exactly-once writers can refuse to overwrite what they do not own: ``if_none_match=True``
fails when the key exists, ``if_match=etag`` fails unless the current object has that ETag.
Every S3 object is written with server-side encryption (``AES256`` or ``aws:kms``).

Errors: :class:`PreconditionFailed` (a condition did not hold), :class:`StoreUnavailable`
(endpoint unreachable, timeouts, 5xx: worth retrying), :class:`StoreError` (anything else,
e.g. AccessDenied, NoSuchBucket; carries ``code``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlparse

if TYPE_CHECKING:
    from pipeline.config import StorageConfig

StorageClass = Literal["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                       "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"]
"""The S3 storage classes an object may be written in."""


class StoreError(Exception):
    """A storage operation failed; ``code`` names the cause (S3 error code or errno name)."""

    def __init__(self, message: str, code: str = "Error") -> None:
        super().__init__(message)
        self.code = code


class StoreUnavailable(StoreError):
    """The store could not be reached or answered 5xx; retrying later may succeed."""


class PreconditionFailed(StoreError):
    """A conditional write found the object in another state than required."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    sse: str | None = None


class ObjectStore(Protocol):
    url: str

    def put(self, key: str, data: bytes, *, if_none_match: bool = False,
            if_match: str | None = None) -> str:
        """Write atomically; returns the new ETag."""
        ...

    def get(self, key: str) -> bytes: ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def delete(self, key: str) -> None: ...


def open_store(url: str, *, s3_endpoint: str | None = None, sse: str = "AES256",
               kms_key_id: str | None = None, storage_class: str | None = None,
               s3_client: Any = None) -> ObjectStore:
    """The store for a lake URL. Raises ValueError for an unsupported scheme."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileStore(Path(parsed.netloc + parsed.path))
    if parsed.scheme == "s3":
        from pipeline.lake.s3store import S3Store

        client = s3_client or s3_client_for(s3_endpoint)
        return S3Store(client, parsed.netloc, parsed.path.strip("/"), sse=sse,
                       kms_key_id=kms_key_id, storage_class=storage_class)
    raise ValueError(f"unsupported lake URL {url!r}: use file://PATH or s3://BUCKET/PREFIX")


def open_lake(storage: StorageConfig) -> ObjectStore:
    """The lake of ``[storage]``: its URL and endpoint, every S3 put encrypted (and stored in
    the storage class) as configured there. Raises ValueError for an unsupported scheme."""
    return open_store(storage.lake, s3_endpoint=storage.s3_endpoint, sse=storage.encryption,
                      kms_key_id=storage.kms_key_id, storage_class=storage.storage_class)


def s3_client_for(endpoint: str | None) -> Any:
    """A boto3 S3 client for ``endpoint`` (None: AWS); see :func:`aws_client`."""
    return aws_client("s3", endpoint)


def aws_client(service: str, endpoint: str | None, region: str | None = None) -> Any:
    """A boto3 client with bounded retries and timeouts (credentials from the usual chain;
    for a local endpoint without credentials, dummy ones)."""
    import boto3
    from botocore.config import Config as BotoConfig

    session = boto3.session.Session()
    creds: dict[str, str] = {}
    if endpoint and session.get_credentials() is None:
        creds = {"aws_access_key_id": "trailpipe", "aws_secret_access_key": "trailpipe"}
    return session.client(
        service, endpoint_url=endpoint, region_name=region or session.region_name or "us-east-1",
        config=BotoConfig(retries={"max_attempts": 2, "mode": "standard"},
                          connect_timeout=3, read_timeout=20), **creds)


class FileStore:
    """A directory as an object store; ETag is the MD5 of the content, as S3's for
    single-part uploads. Conditions are checked then written, which is race-free only for
    one writer per key (the local dev lake); use S3 for concurrent writers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"file://{root}"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StoreError(f"key {key!r} escapes the lake root", "InvalidKey")
        return path

    def put(self, key: str, data: bytes, *, if_none_match: bool = False,
            if_match: str | None = None) -> str:
        path = self._path(key)
        current = self.head(key)
        if if_none_match and current is not None:
            raise PreconditionFailed(f"{key} exists", "PreconditionFailed")
        if if_match is not None and (current is None or current.etag != if_match):
            raise PreconditionFailed(f"{key} is not at ETag {if_match}", "PreconditionFailed")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise StoreError(f"{key} not found", "NoSuchKey") from exc

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        if not path.is_file():
            return None
        data = path.read_bytes()
        return ObjectInfo(key, len(data), hashlib.md5(data, usedforsecurity=False).hexdigest())

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if not self.root.exists():
            return
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix) and not path.name.startswith(".tmp-"):
                yield ObjectInfo(key, path.stat().st_size, "")

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
