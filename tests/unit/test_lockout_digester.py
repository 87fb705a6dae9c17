"""The digester refuses to start, with the reason, when no configured key can continue the
chain (a rotated key without ``[digest] trusted_public_keys``) or no private key is configured,
instead of running without ever writing a digest."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fakes import MemStore

from consumers.digester import wire
from pipeline.config import Config
from pipeline.daemon import Context
from pipeline.lake.digest.config import DigestConfig
from pipeline.lake.digest.model import build_digest
from pipeline.lake.keys import SigningKeyError, public_pem
from pipeline.lake.store import StoreUnavailable

H0 = 1_710_057_600_000  # 2024-03-10T08:00:00Z
OLD, NEW = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()


def _pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _lake_signed_by(key: Ed25519PrivateKey) -> MemStore:
    store = MemStore()
    head = build_digest(H0, lake=store.url, previous=None, objects=[], compactions=[],
                        signer=key, signed_at_ms=H0 + 3_600_000)
    store.put(head.key, head.body)
    return store


def _wire(store: MemStore, **digest: object) -> None:
    cfg = Config(digest=DigestConfig(**digest))  # type: ignore[arg-type]
    later = H0 + 9 * 3_600_000
    wire(Context(cfg, "unused:9092", hooks={"store": store, "clock": lambda _ms: later}))


def test_a_head_no_configured_key_verifies_refuses_the_start() -> None:
    with pytest.raises(SigningKeyError, match="trusted_public_keys") as raised:
        _wire(_lake_signed_by(OLD), private_key=_pem(NEW))
    assert "the digest chain cannot be continued" in str(raised.value)


def test_the_rotated_key_trusted_the_digester_starts() -> None:
    _wire(_lake_signed_by(OLD), private_key=_pem(NEW),
          trusted_public_keys=[public_pem(OLD.public_key()).decode()])


def test_an_unreachable_lake_does_not_refuse_the_start() -> None:
    store = _lake_signed_by(OLD)
    store.fail = StoreUnavailable("down", "EndpointConnectionError")
    _wire(store, private_key=_pem(NEW))  # logged; the run retries until the lake answers


def test_no_private_key_refuses_the_start_naming_keygen() -> None:
    with pytest.raises(SigningKeyError, match="trailpipe lake keygen"):
        _wire(MemStore())
