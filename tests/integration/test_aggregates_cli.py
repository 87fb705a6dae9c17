"""`trailpipe aggregates show` and `trailpipe insights list` against the real broker and a
file:// lake: Aggregate records written in transactions (one aborted), a key overwritten, a
tombstone, corrections and lake copies; insights as ApiCallEvent records."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner

from pipeline.aggregates.table import AGGREGATE, object_key, to_table
from pipeline.cli.app import app
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.events.records import encode_record
from pipeline.events.wire import encode

if TYPE_CHECKING:  # imported at run time, pytest would try to collect it as a test class
    from conftest import TestCluster

pytestmark = pytest.mark.integration
MINUTE_MS = 60_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DIMS = ("account", "region", "event_source", "event_name", "outcome", "identity_type")


def _agg(account: str, start_ms: int, count: int, principals: dict[str, int], *,
         outcome: str = "OK", correction: bool = False, offset: int = 1) -> dict[str, Any]:
    return {"window_size": "1m", "window_start_ms": start_ms,
            "window_end_ms": start_ms + MINUTE_MS, "account": account, "region": "us-east-1",
            "event_source": "s3.amazonaws.com", "event_name": "GetObject", "outcome": outcome,
            "identity_type": "IAMUser", "count": count, "distinct_principals": len(principals),
            "distinct_source_ips": 0,
            "principals": [{"value": v, "count": c} for v, c in principals.items()],
            "source_ips": [], "values_complete": True, "correction": correction,
            "partition": 0, "trigger_offset": offset, "watermark_ms": start_ms,
            "emitted_ms": T0}


def _key(datum: dict[str, Any]) -> bytes:
    parts = [datum["window_size"], str(datum["window_start_ms"]), *(datum[d] for d in DIMS)]
    if datum["correction"]:
        parts += ["correction", f"{datum['partition']}:{datum['trigger_offset']}"]
    return "|".join(parts).encode()


LIVE = [
    _agg("111111111111", T0, 5, {"arn:a": 3, "arn:b": 2}),
    _agg("111111111111", T0, 2, {"arn:c": 2}, correction=True, offset=40),
    _agg("222222222222", T0, 4, {"arn:a": 4}),
    _agg("222222222222", T0, 3, {"arn:d": 3}, outcome="AccessDenied"),
    _agg("111111111111", T0 + MINUTE_MS, 6, {"arn:b": 6}),
]
"""What a reader must see: latest value per key, nothing aborted or deleted."""


def _produce_aggregates(bootstrap: str, topic: str, unique: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"agg-{unique}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    stale = _agg("222222222222", T0, 99, {"arn:old": 99})  # overwritten by LIVE[2]
    deleted = _agg("333333333333", T0, 7, {"arn:gone": 7})
    for datum in [stale, deleted, *LIVE]:
        producer.produce(topic, key=_key(datum), value=encode_record(AGGREGATE, datum))
    producer.produce(topic, key=_key(deleted), value=None)
    producer.produce(topic, key=b"junk", value=b"not an aggregate")
    producer.commit_transaction(30)
    producer.begin_transaction()  # a crashed aggregator's output: never read
    ghost = _agg("111111111111", T0, 1000, {"arn:ghost": 1000})
    producer.produce(topic, key=_key(ghost), value=encode_record(AGGREGATE, ghost))
    assert producer.flush(30) == 0  # in the log, so that only the abort hides it
    producer.abort_transaction(30)


def _expected_by_account() -> dict[tuple[int, str], int]:
    counts: Counter[tuple[int, str]] = Counter()
    for d in LIVE:
        counts[(d["window_start_ms"], d["account"])] += d["count"]
    return dict(counts)


def _invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def topics(kafka: TestCluster) -> Iterator[dict[str, str]]:
    """Module-scoped topics filled once (unique names; deleted at the end)."""
    import uuid

    from confluent_kafka.admin import AdminClient, NewTopic

    unique = uuid.uuid4().hex[:10]
    names = {"aggregates": f"test.agg.{unique}", "insights": f"test.ins.{unique}"}
    admin = AdminClient(kafka.client_config())
    futures = admin.create_topics([NewTopic(names["aggregates"], 2, 1,
                                            config={"cleanup.policy": "compact"}),
                                   NewTopic(names["insights"], 1, 1)])
    for fut in futures.values():
        fut.result(timeout=30)
    _produce_aggregates(kafka.bootstrap, names["aggregates"], unique)
    _produce_insights(kafka.bootstrap, names["insights"])
    yield names
    for fut in admin.delete_topics(list(names.values()), operation_timeout=30).values():
        fut.result(timeout=30)


def _env(kafka: TestCluster, topics: dict[str, str]) -> dict[str, str]:
    return {"TRAILPIPE_KAFKA__BOOTSTRAP": kafka.bootstrap,
            "TRAILPIPE_TOPICS__AGGREGATES": topics["aggregates"],
            "TRAILPIPE_TOPICS__INSIGHTS": topics["insights"]}


def test_show_from_the_topic_is_the_latest_committed_value_per_key(
        kafka: TestCluster, topics: dict[str, str]) -> None:
    result = _invoke("aggregates", "show", "--window", "1m", "--by", "account",
                     "--format", "json", env=_env(kafka, topics))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(r["window_start_ms"], r["account"]): r["count"] for r in rows} == \
        _expected_by_account()
    first = next(r for r in rows if r["account"] == "111111111111" and r["window_start_ms"] == T0)
    assert (first["distinct_principals"], first["corrections"]) == (3, 1)


def test_show_top_principals_as_csv_and_table(kafka: TestCluster, topics: dict[str, str]) -> None:
    env = _env(kafka, topics)
    result = _invoke("aggregates", "show", "--window", "1m", "--by", "principal", "--top", "1",
                     "--to", str(T0 + MINUTE_MS), "--format", "csv", env=env)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    # Window T0: arn:a = 3 + 4 over two accounts beats every other principal.
    assert [(r["principal"], r["count"], r["exact"]) for r in rows] == [("arn:a", "7", "True")]
    table = _invoke("aggregates", "show", "--window", "1m", "--by", "errorCode",
                    "--from", "2026-01-01T00:00:00Z", env=env)
    assert table.exit_code == 0, table.output
    assert "AccessDenied" in table.stdout and "2026-01-01T00:00:00.000Z" in table.stdout
    assert "window_start" in table.stdout and " OK " not in table.stdout


def test_show_from_the_lake_merges_copies(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    files = {object_key("1m", T0, 0, 0): LIVE[:3], object_key("1m", T0, 0, 3): LIVE[3:],
             object_key("1m", T0, 1, 0): LIVE[:2],  # a replay's copy of the first rows
             object_key("1h", T0, 0, 0): [{**LIVE[0], "window_size": "1h", "count": 50}]}
    for key, datums in files.items():
        (lake / key).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(to_table(datums), lake / key)
    env = {"TRAILPIPE_STORAGE__LAKE": f"file://{lake}"}
    result = _invoke("aggregates", "show", "--source", "lake", "--window", "1m",
                     "--by", "account", "--format", "json", env=env)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(r["window_start_ms"], r["account"]): r["count"] for r in rows} == \
        _expected_by_account()
    # The lake view: raw parts (copies included), no events needed.
    query = _invoke("lake", "query", "SELECT window_size, date, sum(count)::BIGINT AS n FROM "
                    "aggregates GROUP BY ALL ORDER BY window_size", "--format", "json", env=env)
    assert query.exit_code == 0, query.output
    assert [json.loads(line) for line in query.stdout.splitlines()] == [
        {"window_size": "1h", "date": "2026-01-01", "n": 50},
        {"window_size": "1m", "date": "2026-01-01",
         "n": sum(d["count"] for d in LIVE) + LIVE[0]["count"] + LIVE[1]["count"]}]
    events = _invoke("lake", "query", "SELECT count(*) AS n FROM cloudtrail", "--format",
                     "json", env=env)
    assert (events.exit_code, json.loads(events.stdout)) == (0, {"n": 0})


def _insight(shared: str, state: str, time: str, principal: str, average: float
             ) -> dict[str, Any]:
    attributions = [{"attribute": "userIdentityArn",
                     "insight": [{"value": "arn:other", "average": average / 4},
                                 {"value": principal, "average": average}],
                     "baseline": [{"value": principal, "average": 0.5}]}]
    return {"eventVersion": "1.08", "eventTime": time, "awsRegion": "eu-west-1",
            "eventID": f"{shared}-{state}", "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": "111111111111", "sharedEventID": shared,
            "eventCategory": "Insight",
            "insightDetails": {"state": state, "eventSource": "iam.amazonaws.com",
                               "eventName": "CreateUser", "insightType": "ApiCallRateInsight",
                               "insightContext": {"statistics": {
                                   "baseline": {"average": 0.5},
                                   "insight": {"average": average}},
                                   "attributions": attributions}}}


def _produce_insights(bootstrap: str, topic: str) -> None:
    ingest = IngestMeta(T0, "test", "test")
    records = [_insight("i-1", "Start", "2026-01-01T00:05:00Z", "arn:spiker", 20.0),
               _insight("i-1", "End", "2026-01-01T00:20:00Z", "arn:spiker", 18.0),
               _insight("i-2", "Start", "2026-01-01T03:00:00Z", "arn:late", 9.0)]
    producer = Producer({"bootstrap.servers": bootstrap})
    for record in records:
        producer.produce(topic, value=encode(to_avro(record, ingest=ingest)))
    producer.produce(topic, value=b"\x00garbage")
    assert producer.flush(30) == 0


def test_insights_list_pairs_start_and_end(kafka: TestCluster, topics: dict[str, str]) -> None:
    env = _env(kafka, topics)
    result = _invoke("insights", "list", "--format", "json", env=env)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["shared_event_id"], r["top_principal"], r["insight_average"]) for r in rows] == \
        [("i-1", "arn:spiker", 18.0), ("i-2", "arn:late", 9.0)]
    assert rows[0]["end_ms"] - rows[0]["start_ms"] == 15 * MINUTE_MS
    assert rows[1]["end_ms"] is None
    assert "1 undecodable" in result.stderr
    later = _invoke("insights", "list", "--from", "2026-01-01T01:00:00Z", env=env)
    assert later.exit_code == 0, later.output
    assert "open" in later.stdout and "arn:spiker" not in later.stdout


def test_bad_arguments_and_missing_topic(kafka: TestCluster) -> None:
    bad = _invoke("aggregates", "show", "--window", "5m")
    assert bad.exit_code == 2 and "window must be one of 1m, 1h" in bad.stderr
    backwards = _invoke("insights", "list", "--from", "2026-01-02", "--to", "2026-01-01")
    assert backwards.exit_code == 2 and "--from must be before --to" in backwards.stderr
    missing = _invoke("aggregates", "show", env={"TRAILPIPE_KAFKA__BOOTSTRAP": kafka.bootstrap,
                                                 "TRAILPIPE_TOPICS__AGGREGATES": "no.such.t"})
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
