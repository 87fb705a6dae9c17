"""The digest format: canonical JSON, signing, parsing, keys, notices. Pure."""

from __future__ import annotations

import base64
import hashlib
import json
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.lake.digest.config import DigestConfig
from pipeline.lake.digest.model import (
    ChainLink,
    Compaction,
    CompactionEntry,
    DigestFormatError,
    ObjectEntry,
    build_digest,
    canonical_json,
    iso_ms,
    parse_digest,
    parse_iso_ms,
    parse_notice,
    signing_payload,
    verify_signature,
)
from pipeline.lake.digest.period import start_of_digest_key
from pipeline.lake.keys import (
    SigningKeyError,
    fingerprint,
    generate_keypair,
    load_private_key,
    load_public_key,
    public_pem,
    trusted_keys,
)
from pipeline.lake.layout import Delivery, digest_key

H0 = parse_iso_ms("2024-03-10T08:00:00Z")
HOUR = 3_600_000
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def entry(name: str, data: bytes = b"x") -> ObjectEntry:
    return ObjectEntry(f"events/account=1/region=r/date=2024-03-10/hour=08/{name}",
                       hashlib.sha256(data).hexdigest(), len(data), 3, "t", 0, 0, 2)


def test_canonical_json_is_sorted_compact_utf8_and_rejects_floats():
    assert canonical_json({"b": [1, None, True], "a": "é"}) == \
        '{"a":"é","b":[1,null,true]}'.encode()
    assert canonical_json({"x": "\n\u0001"}) == b'{"x":"\\n\\u0001"}'
    with pytest.raises(TypeError):
        canonical_json({"a": 1.5})
    with pytest.raises(TypeError):
        canonical_json({1: "a"})


def test_iso_and_digest_key_round_trip():
    assert iso_ms(H0) == "2024-03-10T08:00:00.000Z"
    assert parse_iso_ms("2024-03-10T08:00") == H0  # naive means UTC
    assert parse_iso_ms("2024-03-10T09:00+01:00") == H0
    assert start_of_digest_key(digest_key(H0)) == H0
    assert digest_key(H0) == "digests/2024/03/10/2024-03-10T08.json"
    assert start_of_digest_key("digests/2024/03/11/2024-03-10T08.json") is None
    assert start_of_digest_key("digests/2024/03/10/2024-03-10T08.json.bak") is None


def test_build_sign_parse_verify():
    prev = ChainLink("digests/2024/03/10/2024-03-10T07.json", "ab" * 32, "c2ln")
    d = build_digest(H0, period_ms=HOUR,
                     lake="s3://b/p", previous=prev, objects=[entry("b"), entry("a")],
                     compactions=[CompactionEntry(("x",), ("y",))], signer=KEY,
                     signed_at_ms=H0 + HOUR + 5)
    doc = json.loads(d.body)
    assert doc["start"] == "2024-03-10T08:00:00.000Z"
    assert doc["end"] == "2024-03-10T09:00:00.000Z"
    assert (doc["version"], doc["period_ms"]) == (2, HOUR)
    assert [o["key"] for o in doc["objects"]] == sorted(o["key"] for o in doc["objects"])
    assert doc["previous"] == {"key": prev.key, "sha256": prev.sha256,
                               "signature": prev.signature}
    assert doc["compactions"] == [{"replaced": ["x"], "by": ["y"]}]
    assert doc["public_key_fingerprint"] == fingerprint(KEY.public_key())
    parsed = parse_digest(d.key, d.body)
    keys = trusted_keys([KEY.public_key()])
    assert verify_signature(parsed, keys) is None
    # The signature covers the canonical form, not the stored formatting.
    sig = base64.b64decode(doc["signature"])
    KEY.public_key().verify(sig, signing_payload(doc))
    assert parsed.link.sha256 == hashlib.sha256(d.body).hexdigest()


def test_signing_is_deterministic():
    a = build_digest(H0, period_ms=HOUR,
                     lake="l", previous=None, objects=[entry("a")], compactions=[],
                     signer=KEY, signed_at_ms=H0)
    b = build_digest(H0, period_ms=HOUR,
                     lake="l", previous=None, objects=[entry("a")], compactions=[],
                     signer=KEY, signed_at_ms=H0)
    assert a.body == b.body


@pytest.mark.parametrize("field, value", [
    ("objects", [{"key": "a", "sha256": "x", "bytes": 1, "records": 1, "topic": "t",
                  "partition": 0, "first_offset": 0, "last_offset": 99}]),
    ("lake", "s3://elsewhere"),
    ("previous", None),
    ("signed_at", "2030-01-01T00:00:00.000Z"),
])
def test_any_change_breaks_the_signature(field, value):
    d = build_digest(H0, period_ms=HOUR,
                     lake="l", previous=ChainLink("k", "s", "g"), objects=[entry("a")],
                     compactions=[], signer=KEY, signed_at_ms=H0)
    doc = dict(d.doc, **{field: value})
    body = json.dumps(doc).encode()
    assert verify_signature(parse_digest(d.key, body), trusted_keys([KEY.public_key()])) \
        == "bad_signature"


def test_wrong_key_and_garbled_signature():
    d = build_digest(H0, period_ms=HOUR,
                     lake="l", previous=None, objects=[], compactions=[], signer=KEY,
                     signed_at_ms=H0)
    other = Ed25519PrivateKey.generate().public_key()
    assert verify_signature(d, trusted_keys([other])) == "untrusted_key"
    garbled = parse_digest(d.key, json.dumps(dict(d.doc, signature="!!notbase64")).encode())
    assert verify_signature(garbled, trusted_keys([KEY.public_key()])) == "bad_signature"
    # A digest that claims a trusted fingerprint but is signed by another key.
    forged = build_digest(H0, period_ms=HOUR, lake="l", previous=None, objects=[], compactions=[],
                          signer=Ed25519PrivateKey.generate(), signed_at_ms=H0)
    claimed = dict(forged.doc, public_key_fingerprint=fingerprint(KEY.public_key()))
    assert verify_signature(parse_digest(d.key, json.dumps(claimed).encode()),
                            trusted_keys([KEY.public_key()])) == "bad_signature"


@pytest.mark.parametrize("body, message", [
    (b"not json", "not JSON"),
    (b"[]", "not a JSON object"),
    (b'{"version": 1}', "hour_start missing"),
    (b'{"version": 2, "start": "x", "end": "y"}', "period_ms missing"),
    (b'{"version": 3}', "not a known digest version"),
])
def test_parse_rejects_malformed(body, message):
    with pytest.raises(DigestFormatError, match=message):
        parse_digest(digest_key(H0), body)


def test_parse_rejects_hour_that_does_not_match_key():
    d = build_digest(H0, period_ms=HOUR,
                     lake="l", previous=None, objects=[], compactions=[], signer=KEY,
                     signed_at_ms=H0)
    with pytest.raises(DigestFormatError, match="do not match the key"):
        parse_digest(digest_key(H0 + HOUR), d.body)


def test_parse_notice_delivery_and_compaction():
    d = Delivery("file:///l", "events/a", "ab", 10, 2, "t", 1, 5, 6, H0, H0, H0 + 1)
    assert parse_notice(d.to_json()) == d
    c = Compaction("file:///l", ("a", "b"), ("c",), H0)
    assert parse_notice(c.to_json()) == c
    assert c.entry == CompactionEntry(("a", "b"), ("c",))
    for bad in (None, b"[1]", b'{"lake": "x"}', b"junk"):
        with pytest.raises((ValueError, TypeError, KeyError)):
            parse_notice(bad)


def test_keygen_writes_0600_and_keys_load(tmp_path):
    priv, pub, fp = generate_keypair(tmp_path / "k" / "digest.pem")
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert pub.name == "digest.pem.pub"
    key = load_private_key(str(priv))
    assert fingerprint(key.public_key()) == fp
    assert fingerprint(load_public_key(str(pub))) == fp
    assert fingerprint(load_public_key(pub.read_text())) == fp  # inline PEM
    assert fingerprint(load_public_key(str(priv))) == fp  # a private key's public half
    with pytest.raises(SigningKeyError, match="exists"):
        generate_keypair(priv)
    assert generate_keypair(priv, force=True)[2] != fp


def test_key_errors(tmp_path):
    with pytest.raises(SigningKeyError, match="cannot read"):
        load_private_key(str(tmp_path / "nope.pem"))
    (tmp_path / "junk.pem").write_text("hello")
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM"):
        load_private_key(str(tmp_path / "junk.pem"))
    with pytest.raises(SigningKeyError, match="not a PEM public key"):
        load_public_key(str(tmp_path / "junk.pem"))
    assert public_pem(KEY.public_key()).startswith(b"-----BEGIN PUBLIC KEY-----")


def test_digest_config_defaults_and_env_lists():
    cfg = DigestConfig()
    assert cfg.private_key is None and cfg.close_grace_ms == 900_000
    assert DigestConfig(trusted_public_keys="a.pub,b.pub").trusted_public_keys == \
        ["a.pub", "b.pub"]
    with pytest.raises(ValueError):
        DigestConfig(unknown=1)
    masked = DigestConfig(private_key="-----BEGIN PRIVATE KEY-----").model_dump(mode="json")
    assert masked["private_key"] == "**********"
