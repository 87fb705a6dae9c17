"""`trailpipe replay` against the real broker: the corpus produced keyed and timestamped like
our producers, replayed with a window and filters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from replay_kit import KEEP  # timestamps are event times, years old: keep them

from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, from_avro, parse_event_time, to_avro
from pipeline.events.partition import event_key, make_key, partition_for

pytestmark = pytest.mark.integration
TRAILPIPE = [sys.executable, "-m", "pipeline.cli.app"]
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_000_000_000, "test", "replay", "records.jsonl")
PARTITIONS = 3
MINUTE_MS = 60_000


def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(CORPUS.glob("*/records.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


def account_of(record: dict[str, Any]) -> str:
    return event_key(record).decode().split("|")[0]


def in_window(record: dict[str, Any], start_ms: int, end_ms: int) -> bool:
    time_ms = parse_event_time(record)[0]
    return time_ms is not None and start_ms <= time_ms < end_ms


def trailpipe(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "TRAILPIPE_LOG__FORMAT": "json"}
    return subprocess.run([*TRAILPIPE, "replay", *args], capture_output=True, env=env,
                          timeout=120, check=False)


def produce(bootstrap: str, topic: str, records: list[tuple[dict[str, Any], int]]) -> None:
    """Each record keyed by account|region (murmur2, as our producers), Kafka timestamp given."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "partitioner": "murmur2_random", "linger.ms": 5})
    for record, timestamp_ms in records:
        producer.produce(topic, wire.encode(to_avro(record, ingest=INGEST)),
                         key=event_key(record), timestamp=timestamp_ms)
    assert producer.flush(30) == 0


@pytest.fixture
def loaded(kafka: Any, make_topic: Callable[..., str]) -> dict[str, Any]:
    """The corpus in file order (so event times go back and forth), each record timestamped
    with its event time (ingest time when it has none), then one late record: event time in
    the window, appended last with a timestamp past the window end."""
    records = corpus()
    times = sorted(t for t in (parse_event_time(r)[0] for r in records) if t is not None)
    start_ms, end_ms = times[len(times) // 5], times[4 * len(times) // 5]
    base = next(r for r in records if parse_event_time(r)[0] and not r.get("errorCode"))
    late = {**base, "eventID": "late-0001", "eventTime": _iso_z(start_ms + 1000)}
    topic = make_topic("replay", PARTITIONS, **KEEP)
    rows = [(r, parse_event_time(r)[0] or INGEST.ingest_time_ms) for r in records]
    produce(kafka.bootstrap, topic, [*rows, (late, end_ms + 10 * MINUTE_MS)])
    return {"topic": topic, "records": [*records, late], "start_ms": start_ms,
            "end_ms": end_ms, "bootstrap": kafka.bootstrap}


def _iso_z(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_args(data: dict[str, Any]) -> list[str]:
    return ["--from", _iso_z(data["start_ms"]), "--to", _iso_z(data["end_ms"]),
            "--topic", data["topic"], "--bootstrap", data["bootstrap"]]


def expected(records: list[dict[str, Any]]) -> list[str]:
    """What the file must hold, as canonical JSON texts in a stable order (for comparison)."""
    return sorted(json.dumps(from_avro(to_avro(r, ingest=INGEST)), sort_keys=True)
                  for r in records)


def as_sorted_json(path: Path) -> list[str]:
    return sorted(json.dumps(json.loads(line), sort_keys=True)
                  for line in path.read_bytes().splitlines())


def test_window_replay_equals_the_python_predicate_byte_identical_twice(
        loaded: dict[str, Any], tmp_path: Path) -> None:
    args = window_args(loaded)
    first = trailpipe(*args, "--no-error", "--out", str(tmp_path / "a.jsonl"))
    assert first.returncode == 0, first.stderr.decode()
    second = trailpipe(*args, "--no-error", "--out", str(tmp_path / "b.jsonl"))
    assert second.returncode == 0, second.stderr.decode()
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes(), (
        first.stderr.decode()[-3000:], second.stderr.decode()[-3000:])
    want = [r for r in loaded["records"]
            if in_window(r, loaded["start_ms"], loaded["end_ms"]) and not r.get("errorCode")]
    assert any(r.get("eventID") == "late-0001" for r in want)
    assert as_sorted_json(tmp_path / "a.jsonl") == expected(want)
    lines = [json.loads(x) for x in (tmp_path / "a.jsonl").read_bytes().splitlines()]
    ids = [r.get("eventID") if isinstance(r.get("eventID"), str) else None for r in lines]
    keys = [(parse_event_time(r)[0], i is None, i or "") for r, i in zip(lines, ids, strict=True)]
    assert keys == sorted(keys)  # by (eventTime, eventID), a record without eventID last
    summary = json.loads(first.stderr.decode().strip().splitlines()[-1])
    assert summary["matched"] == summary["written"] == len(want)
    assert len(summary["partitions"]) == PARTITIONS


def test_targeted_replay_reads_the_one_partition_of_account_and_region(
        loaded: dict[str, Any], tmp_path: Path) -> None:
    timed = [r for r in loaded["records"]
             if in_window(r, loaded["start_ms"], loaded["end_ms"])]
    account, region = max({(account_of(r), r["awsRegion"]) for r in timed
                           if account_of(r) and isinstance(r.get("awsRegion"), str)},
                          key=lambda k: sum((account_of(r), r.get("awsRegion")) == k
                                            for r in timed))
    out = tmp_path / "t.json.gz"
    result = trailpipe(*window_args(loaded), "--account", account, "--region", region,
                       "--out", str(out))
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stderr.decode().strip().splitlines()[-1])
    partition = partition_for(make_key(account, region), PARTITIONS)
    assert list(summary["partitions"]) == [str(partition)]
    full = json.loads(trailpipe(*window_args(loaded), "--dry-run").stdout)
    assert summary["scanned"] < sum(p["estimated_records"] for p in full["partitions"])
    import gzip

    got = json.loads(gzip.decompress(out.read_bytes()))["Records"]
    want = [r for r in timed if (account_of(r), r.get("awsRegion")) == (account, region)]
    assert sorted(json.dumps(r, sort_keys=True) for r in got) == expected(want)
    assert summary["matched"] == len(want) > 0


def test_dry_run_prints_the_plan_and_replay_joins_no_group(loaded: dict[str, Any],
                                                           tmp_path: Path) -> None:
    result = trailpipe(*window_args(loaded), "--dry-run")
    assert result.returncode == 0, result.stderr.decode()
    plan = json.loads(result.stdout)
    assert [p["partition"] for p in plan["partitions"]] == list(range(PARTITIONS))
    assert sum(p["end"] for p in plan["partitions"]) == len(loaded["records"])
    assert trailpipe(*window_args(loaded), "--out", str(tmp_path / "r.jsonl")).returncode == 0
    groups = AdminClient({"bootstrap.servers": loaded["bootstrap"]}).list_consumer_groups(
        request_timeout=10).result()
    assert not [g.group_id for g in groups.valid if g.group_id.startswith("trailpipe-replay")]


def test_stdout_gets_the_bytes_of_a_jsonl_file(loaded: dict[str, Any], tmp_path: Path) -> None:
    args = [*window_args(loaded), "--event-source", "s3.amazonaws.com"]
    to_file = trailpipe(*args, "--out", str(tmp_path / "s.jsonl"))
    to_stdout = trailpipe(*args)
    assert to_file.returncode == to_stdout.returncode == 0, to_stdout.stderr.decode()
    assert to_stdout.stdout == (tmp_path / "s.jsonl").read_bytes() != b""


def test_bad_arguments_exit_2_listing_every_error(tmp_path: Path) -> None:
    result = trailpipe("--from", "yesterday", "--out", str(tmp_path / "x.csv"), "--where",
                       "eventname = 'X'; DROP TABLE t", "--rate", "0")
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "--from 'yesterday': not an ISO 8601 time" in err
    assert "--to is required" in err
    assert "x.csv: unsupported output" in err
    assert "--where: not a SQL expression" in err and "--rate 0.0: must be a positive number" in err


@pytest.mark.parametrize(("lateness_ms", "scanned", "found"),
                         [(3_600_000, 2, ["skewed", "inside"]), (0, 1, ["inside"])])
def test_each_partition_starts_at_the_window_start_less_the_lateness_margin(
        kafka: Any, make_topic: Callable[..., str], tmp_path: Path,
        lateness_ms: int, scanned: int, found: list[str]) -> None:
    t1 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    base = next(r for r in corpus() if parse_event_time(r)[0] and not r.get("errorCode"))
    rows = [({**base, "eventID": "before", "eventTime": _iso_z(t1 - 7_200_000)},
             t1 - 7_200_000),
            # appended 30 min before the window by its Kafka timestamp (a skewed producer
            # clock), yet its event time is inside the window
            ({**base, "eventID": "skewed", "eventTime": _iso_z(t1 + MINUTE_MS)},
             t1 - 30 * MINUTE_MS),
            ({**base, "eventID": "inside", "eventTime": _iso_z(t1 + 5 * MINUTE_MS)},
             t1 + 5 * MINUTE_MS)]
    topic = make_topic("replay-late", 1, **KEEP)
    produce(kafka.bootstrap, topic, rows)
    out = tmp_path / "late.jsonl"
    result = subprocess.run(
        [*TRAILPIPE, "replay", "--from", _iso_z(t1), "--to", _iso_z(t1 + 3_600_000),
         "--topic", topic, "--bootstrap", kafka.bootstrap, "--out", str(out)],
        capture_output=True, timeout=120, check=False,
        env={**os.environ, "TRAILPIPE_REPLAY__LATENESS_MS": str(lateness_ms)})
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stderr.decode().strip().splitlines()[-1])
    assert summary["scanned"] == scanned
    assert [json.loads(line)["eventID"] for line in out.read_bytes().splitlines()] == found


def digest_key(tmp_path: Path) -> tuple[Path, Path]:
    """An Ed25519 digest key (private PEM, mode 600) and its public half."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private, public = tmp_path / "digest.pem", tmp_path / "digest.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def flip_byte(path: Path, index: int) -> None:
    data = bytearray(path.read_bytes())
    data[index] ^= 0x01
    path.write_bytes(bytes(data))


def test_signed_manifest_then_verify_passes_and_one_flipped_byte_fails(
        loaded: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    private, public = digest_key(tmp_path)
    monkeypatch.setenv("TRAILPIPE_DIGEST__PRIVATE_KEY", str(private))
    outs = [tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"]
    for out in outs:
        result = trailpipe(*window_args(loaded), "--out", str(out))
        assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stderr.decode().strip().splitlines()[-1])
    docs = [json.loads((tmp_path / f"{o.name}.manifest.json").read_bytes()) for o in outs]
    assert docs[0]["output"]["sha256"] == docs[1]["output"]["sha256"]
    assert docs[0]["public_key_fingerprint"] is not None and docs[0]["complete"] is True
    assert (docs[1]["records_in"], docs[1]["records_out"]) == (summary["scanned"],
                                                               summary["written"])
    assert [(p["partition"], p["start_offset"], p["end_offset"], p["high_watermark"])
            for p in docs[1]["topic_partitions"]] == [
        (p["partition"], p["start"], p["end"], p["end"]) for p in summary["plan"]["partitions"]]
    out, manifest = outs[0], tmp_path / "a.jsonl.gz.manifest.json"
    ok = trailpipe("verify", str(out))  # the configured digest key's public half
    assert ok.returncode == 0, ok.stderr.decode()
    assert b"signature verified" in ok.stdout
    assert trailpipe("verify", str(out), "--public-key", str(public)).returncode == 0
    flip_byte(out, out.stat().st_size // 2)
    bad_file = trailpipe("verify", str(out))
    assert bad_file.returncode == 1 and b"sha256_mismatch" in bad_file.stderr
    flip_byte(out, out.stat().st_size // 2)
    assert trailpipe("verify", str(out)).returncode == 0
    flip_byte(manifest, manifest.read_bytes().index(b'"operator":"') + 12)
    bad_manifest = trailpipe("verify", str(out))
    assert bad_manifest.returncode == 1 and b"bad_signature" in bad_manifest.stderr


def test_ctrl_c_mid_run_keeps_a_valid_partial_file_marked_incomplete(
        kafka: Any, make_topic: Callable[..., str], tmp_path: Path) -> None:
    timed = [r for r in corpus() if parse_event_time(r)[0] is not None]
    copies = [({**r, "eventID": f"{r.get('eventID')}-{k}"}, parse_event_time(r)[0] or 0)
              for k in range(20) for r in timed]
    topic = make_topic("replay-sigint", 1, **KEEP)
    produce(kafka.bootstrap, topic, copies)
    out = tmp_path / "partial.jsonl"
    env = {**os.environ, "TRAILPIPE_LOG__FORMAT": "json", "TRAILPIPE_REPLAY__BATCH_SIZE": "1"}
    proc = subprocess.Popen(
        [*TRAILPIPE, "replay", "--from", "2000-01-01T00:00:00Z", "--to",
         "2100-01-01T00:00:00Z", "--topic", topic, "--bootstrap", kafka.bootstrap,
         "--out", str(out)], stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # read one record per consume(): the run lasts a while
        lines.append(line)
        if b"replay_reading" in line:
            time.sleep(0.5)  # let some records be read first (not a timing assert)
            proc.send_signal(signal.SIGINT)
            break
    lines += proc.stderr.readlines()
    assert proc.wait(timeout=60) == 130, b"".join(lines).decode()
    summary = json.loads(lines[-1])
    assert summary["complete"] is False
    written = out.read_bytes().splitlines()
    assert 0 < len(written) == summary["written"] < len(copies)
    assert all(json.loads(line)["eventID"] for line in written)
    doc = json.loads((tmp_path / "partial.jsonl.manifest.json").read_bytes())
    assert doc["complete"] is False and doc["records_out"] == len(written)
    [part] = doc["topic_partitions"]
    assert part["end_offset"] - part["start_offset"] == doc["records_in"] < part["high_watermark"]
    result = trailpipe("verify", str(out))
    assert result.returncode == 1
    assert result.stderr.decode().count("  - ") == 1 and b"incomplete:" in result.stderr
