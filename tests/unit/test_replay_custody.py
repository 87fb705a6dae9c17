"""Replay chain of custody and Ctrl-C, without a broker: the read stopped between batches,
the output hashed as written, the manifest of a run (complete or not), ``replay verify``'s
exit codes, the SIGINT flag and the progress bar. Files only under pytest's tmp_path."""

from __future__ import annotations

import io
import json
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from typer.testing import CliRunner

from pipeline.cli.replay import app
from pipeline.config import Config
from pipeline.daemon import events_decoder
from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.replay.canonical import canonical_records
from pipeline.replay.config import ReplayConfig
from pipeline.replay.custody import write_custody
from pipeline.replay.filters import Filters
from pipeline.replay.hot import HotResult, read_plan
from pipeline.replay.manifest import describe_output, manifest_path, verify
from pipeline.replay.output import write_file
from pipeline.replay.plan import PartitionRange, Plan
from pipeline.replay.progress import NoProgress, ReplayProgress, progress_for, stop_on_sigint
from pipeline.replay.session import Request
from pipeline.replay.sources import Read, Sources

INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "records.jsonl:1")
BATCH = 4
CFG = ReplayConfig(batch_size=BATCH, idle_timeout_ms=100)
ALL = Filters(0, 2**62)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def record(i: int) -> dict[str, Any]:
    return {"eventVersion": "1.08", "eventID": f"e-{i:04d}", "eventTime":
            f"2026-11-24T02:{i // 60:02d}:{i % 60:02d}Z", "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject", "awsRegion": "eu-west-1", "recipientAccountId":
            "111122223333", "userIdentity": {"type": "IAMUser", "userName": "alice"}}


@dataclass
class Msg:
    p: int
    o: int
    v: bytes | None

    def partition(self) -> int:
        return self.p

    def offset(self) -> int:
        return self.o

    def value(self) -> bytes | None:
        return self.v

    def error(self) -> Any:
        return None


class BatchConsumer:
    """Serves partitions 0 and 1 (10 records each, offsets 0..9) alternately, BATCH per call."""

    def __init__(self) -> None:
        self.queue = [Msg(p, o, wire.encode(to_avro(record(10 * p + o), ingest=INGEST)))
                      for o in range(10) for p in (0, 1)]
        self.calls = 0

    def assign(self, tps: list[Any]) -> None:
        pass

    def consume(self, n: int, timeout: float) -> list[Msg]:
        self.calls += 1
        out, self.queue = self.queue[:n], self.queue[n:]
        return out

    def pause(self, tps: list[Any]) -> None:
        pass

    def unassign(self) -> None:
        pass


PLAN = Plan("audit.events.v1", 2, 0, (PartitionRange(0, 0, 10, 0), PartitionRange(1, 0, 10, 0)))


def read(**kwargs: Any) -> HotResult:
    return read_plan(BatchConsumer(), PLAN, ALL, events_decoder(Config()),  # type: ignore[arg-type]
                     CFG, **kwargs)


def test_a_full_read_is_complete_and_ends_each_partition_at_the_plan_end() -> None:
    seen: list[tuple[int, int]] = []
    got = read(progress=lambda r: seen.append((r.summary()["scanned"], r.partitions_done)))
    assert got.complete and got.summary()["complete"] is True
    assert [c.next_offset for c in got.counts.values()] == [10, 10]
    assert seen[-1] == (20, 2)
    assert [s for s, _ in seen] == [4, 8, 12, 16, 20]


def test_stop_ends_the_read_between_batches_with_how_far_each_partition_got() -> None:
    batches: list[int] = []
    got = read(stop=lambda: len(batches) >= 2, progress=lambda r: batches.append(1))
    assert not got.complete
    assert got.summary()["scanned"] == 2 * BATCH == got.table.num_rows
    assert [c.next_offset for c in got.counts.values()] == [BATCH, BATCH]
    assert got.partitions_done == 0


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz", "out.json.gz"])
def test_the_hash_taken_while_writing_is_the_file_on_disk(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    described = write_file(canonical_records(read().table), out)
    assert described == describe_output(out)
    assert described.size_bytes > 0
    assert not out.with_name(name + ".partial").exists()


def pem_text(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    path = tmp_path / "key.pub"
    path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def custody(tmp_path: Path, **read_kwargs: Any) -> Path:
    result = read(**read_kwargs)
    out = tmp_path / "case.jsonl"
    records = canonical_records(result.table)
    described = write_file(records, out)
    write_custody(Config(), Request(ALL, out=out, signing_key=pem_text(KEY)), described,
                  Sources(PLAN.topic, PLAN, None), Read(result.table, result, None), len(records))
    return out


def test_the_manifest_of_a_run_records_ranges_counts_and_is_signed_inline(
        tmp_path: Path) -> None:
    out = custody(tmp_path)
    doc = json.loads(manifest_path(out).read_bytes())
    assert [(p["partition"], p["start_offset"], p["end_offset"], p["high_watermark"])
            for p in doc["topic_partitions"]] == [(0, 0, 10, 10), (1, 0, 10, 10)]
    assert (doc["records_in"], doc["records_out"], doc["complete"]) == (20, 20, True)
    assert doc["filters"]["from_ms"] == 0 and doc["filters"]["account"] is None
    assert verify(out, public_key=pem_text(KEY)) == []
    assert verify(out, public_key=public_pem(tmp_path, KEY)) == []


def test_an_interrupted_run_leaves_a_valid_partial_file_marked_incomplete(
        tmp_path: Path) -> None:
    batches: list[int] = []
    out = custody(tmp_path, stop=lambda: len(batches) >= 1,
                  progress=lambda r: batches.append(1))
    lines = out.read_bytes().splitlines()
    assert [json.loads(line)["eventID"] for line in lines] == ["e-0000", "e-0001", "e-0010",
                                                              "e-0011"]
    doc = json.loads(manifest_path(out).read_bytes())
    assert doc["complete"] is False
    assert [p["end_offset"] for p in doc["topic_partitions"]] == [2, 2]
    problems = verify(out, public_key=pem_text(KEY))
    assert [p.split(":")[0] for p in problems] == ["incomplete"]


def test_replay_verify_exit_codes(tmp_path: Path) -> None:
    out = custody(tmp_path)
    runner = CliRunner()
    good = runner.invoke(app, ["verify", str(out), "--public-key",
                               str(public_pem(tmp_path, KEY))])
    assert good.exit_code == 0, good.output
    assert "signature verified" in good.output
    wrong = tmp_path / "other.pub"
    public_pem(tmp_path, OTHER_KEY).rename(wrong)
    untrusted = runner.invoke(app, ["verify", str(out), "--public-key", str(wrong)])
    assert untrusted.exit_code == 1 and "untrusted_key" in untrusted.output
    data = bytearray(out.read_bytes())
    data[5] ^= 0x01
    out.write_bytes(bytes(data))
    flipped = runner.invoke(app, ["verify", str(out), "--public-key", pem_text(KEY)])
    assert flipped.exit_code == 1 and "sha256_mismatch" in flipped.output
    bad_key = runner.invoke(app, ["verify", str(out), "--public-key", str(tmp_path / "none")])
    assert bad_key.exit_code == 2
    assert runner.invoke(app, ["verify"]).exit_code == 2


def test_the_first_sigint_sets_the_flag_and_the_second_interrupts() -> None:
    before = signal.getsignal(signal.SIGINT)
    with stop_on_sigint() as stop:
        assert not stop()
        signal.raise_signal(signal.SIGINT)
        assert stop()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_progress_is_drawn_on_a_terminal_only() -> None:
    assert isinstance(progress_for(PLAN, io.StringIO()), NoProgress)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160)
    with ReplayProgress(PLAN, console) as bar:
        read(progress=bar.update)
    assert "scanned 20 matched 20 partitions 2/2" in screen.getvalue()
