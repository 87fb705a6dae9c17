"""The S3 implementation of :class:`pipeline.lake.store.ObjectStore` (boto3, any endpoint)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from pipeline.lake.store import ObjectInfo, PreconditionFailed, StoreError, StoreUnavailable

_UNAVAILABLE_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout",
                      "500", "502", "503", "504"}


class S3Store:
    """Objects under ``s3://bucket/prefix``; every put carries server-side encryption."""

    def __init__(self, client: Any, bucket: str, prefix: str, *, sse: str = "AES256",
                 kms_key_id: str | None = None, storage_class: str | None = None) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._put_args: dict[str, str] = {"ServerSideEncryption": sse}
        if kms_key_id:
            self._put_args["SSEKMSKeyId"] = kms_key_id
        if storage_class:
            self._put_args["StorageClass"] = storage_class

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, *, if_none_match: bool = False,
            if_match: str | None = None) -> str:
        args = dict(self._put_args)
        if if_none_match:
            args["IfNoneMatch"] = "*"
        if if_match is not None:
            args["IfMatch"] = if_match
        with _errors(key):
            out = self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data,
                                         **args)
        return str(out["ETag"]).strip('"')

    def get(self, key: str) -> bytes:
        with _errors(key):
            return bytes(self.client.get_object(Bucket=self.bucket,
                                                Key=self._key(key))["Body"].read())

    def head(self, key: str) -> ObjectInfo | None:
        try:
            with _errors(key):
                out = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except StoreError as exc:
            if exc.code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(key, int(out["ContentLength"]), str(out["ETag"]).strip('"'),
                          out.get("ServerSideEncryption"))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        with _errors(prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for obj in page.get("Contents", []):
                    yield ObjectInfo(obj["Key"][strip:], int(obj["Size"]),
                                     str(obj["ETag"]).strip('"'))

    def delete(self, key: str) -> None:
        with _errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


class _errors:
    """Translate botocore errors into the store's error types."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __enter__(self) -> None:
        return None

    def __exit__(self, _t: object, exc: BaseException | None, _tb: object) -> None:
        if exc is None or isinstance(exc, StoreError):
            return
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", "Error"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412:
                raise PreconditionFailed(f"{self.key}: {code}", code) from exc
            if code in _UNAVAILABLE_CODES or (status or 0) >= 500:
                raise StoreUnavailable(f"{self.key}: {code}", code) from exc
            raise StoreError(f"{self.key}: {code}: {exc}", code) from exc
        if isinstance(exc, (EndpointConnectionError, BotoCoreError, OSError)):
            raise StoreUnavailable(f"{self.key}: {exc}", type(exc).__name__) from exc
