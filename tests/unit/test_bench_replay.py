"""The ``replay`` scenario's pure parts: the config it writes, the summary it reads from the
CLI's stderr, the targeted account/region/hour it picks. No Kafka."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

# bench/ is a top-level package of the repo, not installed into the venv.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.alert_setup import PARTITIONS
from bench.common import BenchError
from bench.replay_setup import hour_window, last_json, pick_target, write_config
from pipeline.config import load_config
from pipeline.events.partition import partition_for_account

HOUR_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z


def _line(account: str, region: str, time: str) -> bytes:
    return orjson.dumps({"recipientAccountId": account, "awsRegion": region,
                         "eventTime": time}) + b"\n"


def test_written_config_loads_with_the_topic(tmp_path: Path) -> None:
    path = tmp_path / "replay.toml"
    write_config(path, "127.0.0.1:9092", "bench.replay.events.t1")
    cfg = load_config(path, env={})
    assert (cfg.kafka.bootstrap, cfg.topics.events) == ("127.0.0.1:9092",
                                                        "bench.replay.events.t1")


def test_the_summary_is_the_last_json_object_with_counters() -> None:
    log = '{"level": "warning", "event": "x"}\nnot json\n{"scanned": 5, "matched": 2}\n'
    assert last_json(log) == {"scanned": 5, "matched": 2}
    assert last_json('{"level": "warning"}\n') == {}


def test_the_target_is_in_the_busiest_hour_on_the_smallest_partition(tmp_path: Path) -> None:
    keys = [("111111111111", "us-east-1"), ("222222222222", "eu-west-1"),
            ("333333333333", "us-west-2")]
    sizes = {p: 1_000 for p in range(PARTITIONS)}
    smallest = partition_for_account(*keys[1], PARTITIONS)
    sizes[smallest] = 10
    lines = [_line(a, r, "2025-11-24T16:10:00Z") for a, r in keys for _ in range(3)]
    lines.append(_line(*keys[0], "2025-11-24T18:00:00Z"))  # a quieter hour
    path = tmp_path / "full.jsonl"
    path.write_bytes(b"".join(lines))
    target = pick_target(path, sizes)
    assert (target.account, target.region, target.partition) == (*keys[1], smallest)
    assert (target.hour_ms, target.hour_records, target.hour_accounts,
            target.key_records) == (HOUR_MS, 9, 3, 3)
    assert hour_window(target) == (HOUR_MS, HOUR_MS + 3_600_000)


def test_an_hour_of_one_account_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "full.jsonl"
    path.write_bytes(_line("111111111111", "us-east-1", "2025-11-24T16:10:00Z"))
    with pytest.raises(BenchError, match="1 account"):
        pick_target(path, {p: 1 for p in range(PARTITIONS)})
