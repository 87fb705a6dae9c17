"""`trailpipe produce` against the real broker: lossless, keyed by account|region on the
partition Kafka's Java client would pick, bad input dead-lettered with its location."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kit import read_all, read_partition

from pipeline.events.mapping import from_avro
from pipeline.events.partition import event_key, partition_for
from pipeline.events.wire import decode

pytestmark = pytest.mark.integration
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"


def produce(kafka, events: str, dlq: str, *args: str) -> tuple[int, dict]:
    env = {**os.environ, "TRAILPIPE_LOG__FORMAT": "json",
           "TRAILPIPE_TOPICS__EVENTS": events, "TRAILPIPE_TOPICS__DLQ": dlq}
    result = subprocess.run([sys.executable, "-m", "pipeline.cli.app", "produce", *args,
                             "--bootstrap", kafka.bootstrap], capture_output=True, text=True,
                            env=env, timeout=300)
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


def originals() -> dict[str, dict]:
    """location header → original record, for every corpus record."""
    out = {}
    for path in sorted(CORPUS.glob("*/records.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                out[f"{path}:{number}"] = json.loads(line)
    return out


def test_corpus_dir_round_trips_through_kafka(kafka, make_topic) -> None:
    events, dlq = make_topic("events", 6), make_topic("dlq", 1)
    rc, summary = produce(kafka, events, dlq, "cloudtrail-dir", str(CORPUS))
    want = originals()
    invalid = sorted(CORPUS.glob("*/invalid/*"))
    others = [p for p in CORPUS.rglob("*") if p.is_file() and p.suffix == ".tsv"]
    assert rc == 0, summary
    assert summary["produced"] == len(want) == 1073
    assert summary["dead_lettered"] == len(invalid) + len(others)
    assert summary["read"] == summary["produced"] + summary["dead_lettered"]

    msgs = read_all(kafka.bootstrap, events, expected=len(want), timeout_s=60)
    assert len(msgs) == len(want)
    seen = set()
    for msg in msgs:
        where = dict(msg.headers())["x-source-location"].decode()
        original = want[where]
        assert from_avro(decode(msg.value())) == original, where  # lossless, types included
        assert msg.key() == event_key(original)
        assert msg.partition() == partition_for(msg.key(), 6)  # the Java client's choice
        seen.add(where)
    assert seen == set(want)
    one = read_partition(kafka.bootstrap, events, 0)  # a consumer of one partition...
    assert one and all(partition_for(m.key(), 6) == 0 for m in one)  # ...sees only its keys

    dead = read_all(kafka.bootstrap, dlq, expected=summary["dead_lettered"])
    located = {dict(m.headers())["x-source-location"].decode(): m for m in dead}
    for path in invalid:
        msg = located[str(path)]
        assert msg.value() == path.read_bytes()
        assert dict(msg.headers())["x-error-type"] == b"JSONDecodeError"


def test_bad_files_are_dead_lettered_with_reasons(kafka, make_topic, tmp_path) -> None:
    events, dlq = make_topic("events", 3), make_topic("dlq", 1)
    good = {"eventVersion": "1.08", "eventName": "ListBuckets", "awsRegion": "eu-west-1",
            "recipientAccountId": "123456789012", "eventTime": "2024-01-01T00:00:00Z"}
    (tmp_path / "ok.json.gz").write_bytes(gzip.compress(json.dumps({"Records": [good]}).encode()))
    (tmp_path / "fake.json.gz").write_bytes(b"not gzip at all")
    (tmp_path / "cut.json.gz").write_bytes(gzip.compress(b'{"Records": []}' * 100)[:-9])
    (tmp_path / "mixed.jsonl").write_bytes(b"\n".join([
        json.dumps(good).encode(), b"[1]", b"\xff\xfe",
        b'{"eventName": "' + b"x" * 1_400_000 + b'"}']))
    rc, summary = produce(kafka, events, dlq, "cloudtrail-dir", str(tmp_path))
    assert rc == 0
    assert (summary["produced"], summary["dead_lettered"]) == (2, 5)
    dead = read_all(kafka.bootstrap, dlq, expected=5)
    kinds = sorted(dict(m.headers())["x-error-type"].decode() for m in dead)
    assert kinds == ["InvalidUTF8", "NotAnObject", "NotGzipError", "RecordTooLarge",
                     "TruncatedGzipError"]
    locations = {dict(m.headers())["x-source-location"].decode() for m in dead}
    assert f"{tmp_path}/mixed.jsonl:2" in locations
    [big] = [m for m in dead if dict(m.headers())["x-error-type"] == b"RecordTooLarge"]
    assert int(dict(big.headers())["x-original-bytes"]) > 1_400_000  # prefix kept, size noted


def test_missing_path_exits_2(kafka, tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "pipeline.cli.app", "produce", "cloudtrail-dir",
                             str(tmp_path / "nope"), "--bootstrap", kafka.bootstrap],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no such file or directory" in result.stderr


def test_generator_is_deterministic_and_injects_scenarios(kafka, make_topic) -> None:
    events, dlq = make_topic("events", 6), make_topic("dlq", 1)
    args = ("generator", "--rate", "5000", "--count", "3000", "--seed", "7")
    rc, summary = produce(kafka, events, dlq, *args)
    assert rc == 0 and summary["produced"] == 3000 and summary["dead_lettered"] == 0
    records = [from_avro(decode(m.value()))
               for m in read_all(kafka.bootstrap, events, expected=3000)]
    assert len(records) == 3000
    names = {r["eventName"] for r in records}
    assert {"StopLogging", "DeleteTrail", "ScheduleKeyDeletion", "PutBucketPolicy",
            "AuthorizeSecurityGroupIngress", "AttachUserPolicy"} <= names
    roots = [r for r in records if r["eventName"] == "ConsoleLogin"
             and r["userIdentity"]["type"] == "Root"
             and r.get("additionalEventData", {}).get("MFAUsed") == "No"]
    assert roots, "root login without MFA was not injected"

    other = make_topic("events", 6)
    rc, _ = produce(kafka, other, dlq, *args)
    again = [from_avro(decode(m.value())) for m in read_all(kafka.bootstrap, other, expected=3000)]
    assert rc == 0
    by_id = {r["eventID"]: r for r in records}
    assert {r["eventID"] for r in again} == set(by_id)  # same seed, same traffic
    assert all(by_id[r["eventID"]]["eventName"] == r["eventName"] for r in again)
