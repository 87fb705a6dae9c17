"""``[storage]`` encryption reaches both the bucket default and every object put (no I/O: the
S3 client's put is recorded)."""

from __future__ import annotations

from typing import Any

from pipeline.config import StorageConfig, load_config
from pipeline.lake.policy import encryption_document
from pipeline.lake.store import ObjectStore, open_lake


def recording(storage: StorageConfig) -> tuple[ObjectStore, list[dict[str, Any]]]:
    """The lake of ``storage``, its S3 puts recorded instead of sent."""
    store, puts = open_lake(storage), []
    store.client.put_object = lambda **kw: puts.append(kw) or {"ETag": '"e"'}  # type: ignore[attr-defined]
    return store, puts


def test_the_one_encryption_setting_is_the_bucket_default_and_every_puts_header() -> None:
    storage = load_config(env={}, overrides={
        "storage.lake": "s3://bucket/prefix", "storage.s3_endpoint": "http://127.0.0.1:1",
        "storage.encryption": "aws:kms", "storage.kms_key_id": "alias/lake",
        "storage.storage_class": "STANDARD_IA"}).storage
    store, puts = recording(storage)
    store.put("events/a.parquet", b"x", if_none_match=True)
    assert {k: puts[0][k] for k in ("Key", "ServerSideEncryption", "SSEKMSKeyId",
                                    "StorageClass", "IfNoneMatch")} == {
        "Key": "prefix/events/a.parquet", "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/lake", "StorageClass": "STANDARD_IA", "IfNoneMatch": "*"}
    assert encryption_document(storage) == {"Rules": [{"ApplyServerSideEncryptionByDefault": {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/lake"}}]}


def test_by_default_puts_are_aes256_in_the_bucket_default_class() -> None:
    storage = load_config(env={}, overrides={"storage.lake": "s3://bucket"}).storage
    store, puts = recording(storage)
    store.put("k", b"x")
    assert puts[0]["ServerSideEncryption"] == "AES256"
    assert "SSEKMSKeyId" not in puts[0] and "StorageClass" not in puts[0]
