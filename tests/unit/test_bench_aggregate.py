"""The ``aggregate`` scenario's pure parts: the Quix peer's count key and event time agree with
the aggregator's definitions, the aggregator config it writes, the count comparison. No Kafka."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pyarrow as pa

# bench/ is a top-level package of the repo, not installed into the venv.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.aggregate_keys import SEPARATOR, aggregate_key, event_time_ms
from bench.aggregate_setup import ROLES, aggregate_topics, compare, write_config
from pipeline.aggregates.columns import DIMENSIONS, aggregation_columns
from pipeline.config import load_config
from pipeline.events.mapping import IngestMeta, to_avro
from producers.generator.engine import SCENARIOS, Generator

INGEST = IngestMeta(1_764_000_000_000, "bench", "test", None)
ODD: list[dict[str, Any]] = [  # what generated traffic lacks: missing or empty members
    {"eventTime": "2025-11-24T16:00:00Z", "eventName": "Odd", "userIdentity": {
        "accountId": "111122223333"}},
    {"eventTime": "not a time", "recipientAccountId": "", "errorCode": "",
     "userIdentity": {"type": "IAMUser", "accountId": "444455556666"}, "awsRegion": ""},
    {"eventSource": "s3.amazonaws.com"},
]


def datums() -> list[dict[str, Any]]:
    gen = Generator(3, 3, 2, start_ms=1_764_000_000_000, scenarios=SCENARIOS,
                    scenario_every=500)
    return [to_avro(r, ingest=INGEST) for r in [*gen.records(1_000), *ODD]]


def test_quix_key_and_time_are_the_aggregators() -> None:
    rows = datums()
    names = sorted({name for d in rows for name in d})  # datums are sparse
    batch = pa.table({name: pa.array([d.get(name) for d in rows]) for name in names}).append_column(
        "_partition", pa.array([0] * len(rows))).append_column(
        "_offset", pa.array(range(len(rows)))).append_column(
        "_timestamp_ms", pa.array([1_700_000_000_000 + i for i in range(len(rows))]))
    columns = aggregation_columns(batch).to_pylist()
    assert len({c["outcome"] for c in columns}) > 2  # errors are in the sample
    for i, (datum, col) in enumerate(zip(rows, columns, strict=True)):
        assert aggregate_key(datum) == SEPARATOR.join(col[d] for d in DIMENSIONS)
        assert event_time_ms(datum, 1_700_000_000_000 + i) == col["time_ms"]


def test_written_config_loads_with_the_aggregators_topics(tmp_path: Path) -> None:
    topics = aggregate_topics("t1")
    path = tmp_path / "aggregator.toml"
    write_config(path, "127.0.0.1:9092", topics, "bench-group", tmp_path / "lake")
    cfg = load_config(path, env={})
    assert cfg.kafka.bootstrap == "127.0.0.1:9092"
    assert {role: getattr(cfg.topics, role) for role in ROLES} == {
        role: topics[role] for role in ROLES}
    assert topics["quix_out"] not in cfg.topics.names()
    assert cfg.aggregator.group == cfg.aggregator.transactional_id == "bench-group"
    assert cfg.storage.lake == f"file://{tmp_path / 'lake'}"


def test_compare_counts_windows_and_disagreements() -> None:
    ours = {("a", 0): 3, ("a", 60_000): 2, ("b", 0): 1}
    theirs = {("a", 0): 3, ("a", 60_000): 1, ("c", 0): 9}
    assert compare(ours, theirs) == {"windows_1m": 3, "quix_windows_1m": 3,
                                     "windows_compared": 2, "windows_disagreeing": 1}
