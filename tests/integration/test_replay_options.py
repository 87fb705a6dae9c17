"""`trailpipe replay` options through the CLI on the real broker: --where keeps what a Python
predicate keeps, the Parquet and Avro outputs hold the same records as the JSON one (and verify
against their manifests), --rules hunts the replayed records into an alerts file, --rate paces
without changing the bytes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import pyarrow.parquet as pq
import pytest
from replay_kit import (
    event_ids,
    event_ms,
    iso_z,
    produce_rows,
    summary_of,
    timed_corpus,
    topic_for_module,
    trailpipe,
)

pytestmark = pytest.mark.integration
SIGMA = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "sigma" / "aws_cloudtrail"


@pytest.fixture(scope="module")
def corpus_topic(kafka: Any) -> Iterator[dict[str, Any]]:
    """The timed corpus, each record timestamped with its event time, in a 3-partition topic;
    the window holds every record."""
    records = timed_corpus()
    conf = {"bootstrap.servers": kafka.bootstrap}
    with topic_for_module(conf, "replay-options", 3) as topic:
        produce_rows(conf, topic, [(r, event_ms(r)) for r in records])
        times = sorted(event_ms(r) for r in records)
        yield {"records": records, "args": ["--from", iso_z(times[0]), "--to",
                                            iso_z(times[-1] + 1), "--topic", topic,
                                            "--bootstrap", kafka.bootstrap]}


def test_where_keeps_what_the_predicate_says(corpus_topic: dict[str, Any]) -> None:
    run = trailpipe("replay", *corpus_topic["args"], "--where",
                    "errorcode = 'AccessDenied' AND useridentity.type = 'IAMUser'")
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    want = sorted(r.get("eventID") or "" for r in corpus_topic["records"]
                  if r.get("errorCode") == "AccessDenied"
                  and (r.get("userIdentity") or {}).get("type") == "IAMUser")
    assert want and event_ids(run.stdout) == want
    assert summary_of(run)["where_kept"] == len(want)


def test_parquet_and_avro_outputs_hold_the_json_records_and_verify(
        corpus_topic: dict[str, Any], tmp_path: Path) -> None:
    paths = {fmt: tmp_path / f"all.{fmt}" for fmt in ("jsonl", "parquet", "avro")}
    for path in paths.values():
        run = trailpipe("replay", *corpus_topic["args"], "--out", str(path))
        assert run.returncode == 0, run.stderr.decode()[-2000:]
        assert trailpipe("replay", "verify", str(path)).returncode == 0
    ids = [json.loads(line).get("eventID") for line in paths["jsonl"].read_bytes().splitlines()]
    assert len(ids) == len(corpus_topic["records"])
    assert pq.read_table(paths["parquet"])["eventid"].to_pylist() == ids  # same order too
    avro = list(fastavro.reader(io.BytesIO(paths["avro"].read_bytes())))
    assert [d["eventID"] for d in avro] == ids


def test_rules_hunt_the_replayed_records_into_an_alerts_file_deterministically(
        corpus_topic: dict[str, Any], tmp_path: Path) -> None:
    outs = [tmp_path / "a.alerts.jsonl", tmp_path / "b.alerts.jsonl"]
    for out in outs:
        run = trailpipe("replay", *corpus_topic["args"], "--out", str(tmp_path / "r.jsonl"),
                        "--rules", str(SIGMA), "--alerts-out", str(out), "--rate", "5000")
        assert run.returncode == 0, run.stderr.decode()[-2000:]
        hunt = summary_of(run)["hunt"]
        assert hunt["alerts"] > 0 and hunt["rule_errors"] == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()
    rules = {json.loads(line)["rule_id"] for line in outs[0].read_bytes().splitlines()}
    assert len(rules) > 1
    refused = trailpipe("replay", *corpus_topic["args"], "--rules", str(SIGMA),
                        "--alerts-topic", "audit.alerts.v1")
    assert refused.returncode == 2 and b"--alerts-topic" in refused.stderr
