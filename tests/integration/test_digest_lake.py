"""Digests end to end: objects + Delivery notices on a real deliveries topic, the digester on
the real Runner (its clock set hours ahead so hours close), then ``trailpipe lake validate``:
clean, on a copy in another bucket or folder, and after each kind of tampering."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import lake_kit
import pytest
from kit import committed, end_offsets, produce
from typer.testing import CliRunner

from pipeline.config import LogConfig
from pipeline.lake.digest.model import parse_iso_ms
from pipeline.lake.layout import Delivery, digest_key, object_key
from pipeline.lake.store import ObjectStore, open_store, s3_client_for
from pipeline.logs import configure_logging

pytestmark = pytest.mark.integration
H0 = parse_iso_ms("2024-03-10T08:00:00Z")
HOUR = 3_600_000
GRACE = 60_000


@pytest.fixture(scope="module")
def keypair(tmp_path_factory) -> tuple[Path, Path]:
    from pipeline.cli.lake import app

    out = tmp_path_factory.mktemp("keys") / "digest.pem"
    result = invoke(app, ["keygen", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["public_key"] == f"{out}.pub"
    return out, Path(f"{out}.pub")


def archive(store: ObjectStore, offset: int, event_ms: int, delivered_ms: int) -> bytes:
    """What the archiver does for one object: write it, return its Delivery notice."""
    data = f"rows {offset}".encode() * 50
    key = object_key("123456789012", "eu-west-1", event_ms, "audit.events.v1", 0, offset)
    store.put(key, data)
    return Delivery(store.url, key, hashlib.sha256(data).hexdigest(), len(data), 50,
                    "audit.events.v1", 0, offset, offset + 49, event_ms, event_ms,
                    delivered_ms).to_json()


def run_digester(kafka, store: ObjectStore, topic: str, group: str, key: Path,
                 now_ms: int) -> int:
    """The digester in-process on the real Runner until idle; returns digests written."""
    stats, written = lake_kit.run_digester(kafka.bootstrap, store, topic, group, key, now_ms,
                                           grace_ms=GRACE)
    assert stats.dead_lettered == 0
    return written


def validate(url: str, s3_endpoint: str | None, pub: Path, *extra: str) -> tuple[int, dict]:
    from pipeline.cli.lake import app

    args = ["validate", "--lake", url, "--public-key", str(pub), "--format", "json", *extra]
    if s3_endpoint:
        args += ["--s3-endpoint", s3_endpoint]
    result = invoke(app, args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def invoke(app, args: list[str]):
    """Run a CLI command in-process. The command configures logging onto the runner's
    captured stderr, which closes afterwards: configure it back."""
    try:
        return CliRunner().invoke(app, args)
    finally:
        configure_logging(LogConfig(format="console"))


def failures(report: dict) -> set[tuple[str, str]]:
    return {(p["kind"], p["key"]) for p in report["problems"] if p["failure"]}


def build_lake(kafka, make_topic, unique, store: ObjectStore, key: Path) -> list[str]:
    """Hours 0..5 digested, across a digester restart. Returns the object keys."""
    topic = make_topic("deliveries", 1)
    group = f"digester-{unique}"
    first = [archive(store, 0, H0 + 5, H0 + 60_000), archive(store, 50, H0 + 9, H0 + 90_000),
             archive(store, 100, H0 + HOUR, H0 + HOUR + 10),
             archive(store, 150, H0 + 2 * HOUR, H0 + 2 * HOUR + 10)]
    produce(kafka.bootstrap, topic, first)
    # Hours 0 and 1 close; hour 2 stays open, so its notice's offset is not committed.
    assert run_digester(kafka, store, topic, group, key, H0 + 2 * HOUR + GRACE + 1) == 2
    assert committed(kafka.bootstrap, group, topic, 1) == {0: 3}
    late = archive(store, 200, H0 + 30_000, H0 + 4 * HOUR + 5)  # a late event, delivered in 4
    produce(kafka.bootstrap, topic, [late, first[0]])  # first[0] published twice
    assert run_digester(kafka, store, topic, group, key, H0 + 6 * HOUR + GRACE + 1) == 4
    assert committed(kafka.bootstrap, group, topic, 1) == end_offsets(kafka.bootstrap, topic, 1)
    listed = {h: [o["key"] for o in json.loads(store.get(digest_key(H0 + h * HOUR)))["objects"]]
              for h in range(6)}
    assert [len(listed[h]) for h in range(6)] == [2, 1, 1, 0, 1, 0]
    return [json.loads(n)["key"] for n in [*first, late]]


def test_file_lake_validates_and_a_copied_folder_too(kafka, make_topic, unique, tmp_path,
                                                     keypair):
    key, pub = keypair
    url = f"file://{tmp_path / 'lake'}"
    store = open_store(url)
    build_lake(kafka, make_topic, unique, store, key)
    code, report = validate(url, None, pub)
    assert code == 0 and report["ok"], report
    assert (report["digests"], report["objects_verified"], report["objects_scanned"]) == (6, 5, 5)
    shutil.copytree(tmp_path / "lake", tmp_path / "copy")
    (tmp_path / "copy" / digest_key(H0 + 3 * HOUR)).unlink()
    code, report = validate(f"file://{tmp_path / 'copy'}", None, pub)
    assert code == 1 and failures(report) == {("digest_missing", digest_key(H0 + 3 * HOUR))}
    copy = f"file://{tmp_path / 'copy'}"
    code, report = validate(copy, None, pub, "--from", "2024-03-10T09:30", "--to",
                            "2024-03-10T11:00Z")
    assert code == 0 and report["digests"] == 2  # hours 09 and 10
    code, report = validate(copy, None, pub, "--from", "2024-03-10T09:30", "--to",
                            "2024-03-10T12:00Z")
    assert code == 1 and failures(report) == {("digest_missing", digest_key(H0 + 3 * HOUR))}
    from pipeline.cli.lake import app

    wrong = tmp_path / "other.pem"
    assert invoke(app, ["keygen", "--out", str(wrong)]).exit_code == 0
    code, report = validate(url, None, Path(f"{wrong}.pub"))
    assert code == 1 and {k for k, _ in failures(report)} == {"untrusted_key"}


def alter_signature(store: ObjectStore, key: str) -> None:
    """Flip one byte of a digest's own signature, keeping the rest as stored."""
    doc = json.loads(store.get(key))
    sig = bytearray(base64.b64decode(doc["signature"]))
    sig[0] ^= 1
    doc["signature"] = base64.b64encode(bytes(sig)).decode()
    store.put(key, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())


def copy_bucket(client, src: tuple[str, str], dst: tuple[str, str]) -> None:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=src[0], Prefix=src[1])
    for page in pages:
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(src[1]):]
            client.copy_object(Bucket=dst[0], Key=dst[1] + rel,
                               CopySource={"Bucket": src[0], "Key": obj["Key"]})


def test_s3_lake_validates_on_a_copy_and_names_each_tampering(kafka, make_topic, unique,
                                                              s3_endpoint, keypair):
    key, pub = keypair
    client = s3_client_for(s3_endpoint)
    bucket, copies = f"lake-{unique}", f"copies-{unique}"
    client.create_bucket(Bucket=bucket)
    client.create_bucket(Bucket=copies)
    store = open_store(f"s3://{bucket}/prod", s3_endpoint=s3_endpoint)
    objects = build_lake(kafka, make_topic, unique, store, key)
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli.lake", "validate", "--lake",
                           store.url, "--s3-endpoint", s3_endpoint, "--public-key", str(pub)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("OK: 0 failure(s), 0 note(s); 6 digest(s)"), proc.stdout
    d1, d2 = digest_key(H0 + HOUR), digest_key(H0 + 2 * HOUR)
    unlisted = object_key("123456789012", "eu-west-1", H0 + HOUR, "audit.events.v1", 0, 999)
    tampers = {
        "clean": (lambda s: None, set()),
        "modify": (lambda s: s.put(objects[1], b"changed"), {("modified", objects[1])}),
        "delete": (lambda s: s.delete(objects[2]), {("missing", objects[2])}),
        "add": (lambda s: s.put(unlisted, b"injected"), {("unlisted", unlisted)}),
        # The deleted digest listed object 150: it is now unlisted too.
        "delete_digest": (lambda s: s.delete(d2),
                          {("digest_missing", d2), ("unlisted", objects[3])}),
        "signature": (lambda s: alter_signature(s, d1),
                      {("bad_signature", d1), ("chain_broken", d2)}),
    }
    for name, (tamper, expected) in tampers.items():
        prefix = f"{name}/"
        copy_bucket(client, (bucket, "prod/"), (copies, prefix))
        copy = open_store(f"s3://{copies}/{name}", s3_endpoint=s3_endpoint)
        tamper(copy)
        code, report = validate(copy.url, s3_endpoint, pub)
        assert failures(report) == expected, (name, report["problems"])
        assert code == (1 if expected else 0), name


def run_digester_every(kafka, store: ObjectStore, topic: str, group: str, key: Path,
                       now_ms: int, period_ms: int) -> int:
    """The digester built from a config with ``[digest] period_ms``, on the real Runner until
    idle, its clock fixed at ``now_ms``; returns digests written."""
    from pydantic import SecretStr

    from pipeline.config import Config, RunnerConfig, TopicsConfig
    from pipeline.daemon import Context, build_registered
    from pipeline.lake.digest.config import DigestConfig

    cfg = Config(runner=RunnerConfig(commit_interval_ms=200, poll_timeout_ms=200),
                 topics=TopicsConfig(deliveries=topic),
                 digest=DigestConfig(group=group, period_ms=period_ms, close_grace_ms=5_000,
                                     startup_settle_ms=20_000, private_key=SecretStr(str(key))))
    daemon = build_registered("digester", Context(cfg, kafka.bootstrap, hooks={
        "store": store, "clock": lambda _ms: now_ms}))
    stats = daemon.run(idle_exit_s=1.5)
    assert stats.dead_lettered == 0
    return int(daemon.parts.summary()["digests_written"])


def test_period_changed_from_an_hour_to_a_minute_validates(kafka, make_topic, unique,
                                                           tmp_path, keypair):
    key, pub = keypair
    url = f"file://{tmp_path / 'lake'}"
    store = open_store(url)
    topic, group = make_topic("deliveries", 1), f"digester-{unique}"
    t = H0 + HOUR
    produce(kafka.bootstrap, topic, [archive(store, 0, H0 + 5, H0 + 60_000)])
    assert run_digester_every(kafka, store, topic, group, key, t + 10_000, HOUR) == 1
    late = archive(store, 50, t + 5, t + 2 * 60_000 + 10)  # delivered in 09:02 .. 09:03
    produce(kafka.bootstrap, topic, [late])
    assert run_digester_every(kafka, store, topic, group, key, t + 4 * 60_000 + 5_000,
                              60_000) == 4
    minute = json.loads(store.get("digests/2024/03/10/2024-03-10T09-02.json"))
    assert minute["period_ms"] == 60_000
    assert [o["key"] for o in minute["objects"]] == [json.loads(late)["key"]]
    code, report = validate(url, None, pub, "--to", "2024-03-10T09:04Z")
    assert code == 0 and report["digests"] == 5, report
    store.put(json.loads(late)["key"], b"tampered")
    code, report = validate(url, None, pub)
    assert code == 1 and failures(report) == {("modified", json.loads(late)["key"])}
