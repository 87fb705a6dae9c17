"""replay --where: one SQL predicate, the same rows as a WHERE over lake query's cloudtrail view."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from consumers.archiver.objects import build_objects
from pipeline.config import Config
from pipeline.daemon import events_decoder
from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, effective_time_ms, to_avro
from pipeline.lake.columns import lake_table
from pipeline.lake.config import ArchiverConfig
from pipeline.lake.query import EVENTS_SCHEMA, run_query
from pipeline.replay.hot import OFFSET, PARTITION
from pipeline.replay.where import apply_where, check_where, where_schema

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "records.jsonl:1")
RECORDS = [json.loads(line) for p in sorted(CORPUS.glob("*/records.jsonl"))
           for line in p.read_text().splitlines() if line.strip()]
DATUMS = [to_avro(r, ingest=INGEST) for r in RECORDS]


def matched_table() -> pa.Table:
    """The corpus as a replay's matched table: row i at partition 0, offset i."""
    table = events_decoder(Config())([wire.encode(d) for d in DATUMS]).table
    n = len(DATUMS)
    table = table.append_column(PARTITION, pa.array([0] * n, pa.int32()))
    return table.append_column(OFFSET, pa.array(range(n), pa.int64()))


TABLE = matched_table()


def text(record: dict[str, Any], *path: str) -> str | None:
    """A string member of a raw CloudTrail record (None when absent or not a string)."""
    value: Any = record
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def account(record: dict[str, Any]) -> str:
    return (text(record, "recipientAccountId") or text(record, "userIdentity", "accountId")
            or "unknown")


def hour(i: int) -> str:
    return datetime.fromtimestamp(effective_time_ms(DATUMS[i]) / 1000, tz=UTC).strftime("%H")


def bucket(record: dict[str, Any]) -> Any:
    params = record.get("requestParameters")
    value = params.get("bucketName") if isinstance(params, dict) else None
    return value if isinstance(value, str | int | float) and not isinstance(value, bool) else None


PREDICATES: list[tuple[str, Callable[[int, dict[str, Any]], bool]]] = [
    ("eventname = 'AssumeRole'", lambda i, r: text(r, "eventName") == "AssumeRole"),
    ("useridentity.arn LIKE '%:assumed-role/%'",
     lambda i, r: ":assumed-role/" in (text(r, "userIdentity", "arn") or "")),
    ("json_extract_scalar(requestparameters, '$.bucketName') IS NOT NULL",
     lambda i, r: bucket(r) is not None),
    ("errorcode IS NOT NULL AND eventsource = 's3.amazonaws.com'",
     lambda i, r: text(r, "errorCode") is not None
     and text(r, "eventSource") == "s3.amazonaws.com"),
    ("readonly = 'false'", lambda i, r: r.get("readOnly") is False),
    ("regexp_like(sourceipaddress, '^10\\.') OR useragent LIKE '%aws-cli%'",
     lambda i, r: (text(r, "sourceIPAddress") or "").startswith("10.")
     or "aws-cli" in (text(r, "userAgent") or "")),
    ("account <> 'unknown' AND region = 'us-east-1'",
     lambda i, r: account(r) != "unknown" and text(r, "awsRegion") == "us-east-1"),
    ("hour = '03' -- Athena-style partition column, then a comment",
     lambda i, r: hour(i) == "03"),
]


@pytest.mark.parametrize(("sql", "keep"), PREDICATES, ids=[p[0] for p in PREDICATES])
def test_where_keeps_the_rows_a_python_predicate_keeps_in_order(
        sql: str, keep: Callable[[int, dict[str, Any]], bool]) -> None:
    expected = [i for i, r in enumerate(RECORDS) if keep(i, r)]
    got = apply_where(TABLE, sql)
    assert got.column(OFFSET).to_pylist() == expected
    assert 0 < len(expected) < len(RECORDS)  # the predicate splits the corpus
    assert got.schema == TABLE.schema


def test_where_means_the_same_as_in_lake_query(tmp_path: Path) -> None:
    """The corpus archived into a local lake: each predicate selects the same events there."""
    lake = lake_table(TABLE.append_column("_timestamp_ms", pa.array(range(len(RECORDS)),
                                                                     pa.int64())))
    for obj in build_objects(lake, topic="audit.events.v1", partition=0, cfg=ArchiverConfig()):
        (tmp_path / obj.key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / obj.key).write_bytes(obj.data)
    columns = ",\n".join(f"({sql}\n) AS p{i}" for i, (sql, _) in enumerate(PREDICATES))
    queried = run_query(f"file://{tmp_path}",
                        f"SELECT _offset,\n{columns}\nFROM cloudtrail ORDER BY _offset")
    offsets = queried.column(0).to_pylist()
    for i, (sql, _) in enumerate(PREDICATES):
        kept = [o for o, p in zip(offsets, queried.column(i + 1).to_pylist(), strict=True) if p]
        assert apply_where(TABLE, sql).column(OFFSET).to_pylist() == kept, sql


def test_the_predicate_sees_the_lake_views_columns_but_the_kafka_timestamp() -> None:
    assert where_schema() == pa.schema([f for f in EVENTS_SCHEMA if f.name != "_timestamp_ms"])


def test_null_and_false_drop_the_row_and_no_match_keeps_the_columns() -> None:
    assert apply_where(TABLE, "errorcode = NULL").num_rows == 0
    empty = apply_where(TABLE.slice(0, 0), "true")
    assert empty.num_rows == 0 and empty.schema == TABLE.schema


@pytest.mark.parametrize(("sql", "message"), [
    ("eventname = 'x'; DROP TABLE cloudtrail", "not a SQL expression"),
    ("true; SELECT 1", "not a SQL expression"),
    ("true) UNION SELECT (1", "one boolean expression expected"),
    ("true) LIMIT (1", "one boolean expression expected"),
    ("true) GROUP BY eventid HAVING (true", "one boolean expression expected"),
    ("eventid IN (SELECT eventid FROM cloudtrail)", "subqueries are not allowed"),
    ("EXISTS (SELECT 1)", "subqueries are not allowed"),
    ("nosuchcolumn = 1", "nosuchcolumn"),
    ("_timestamp_ms > 0", "_timestamp_ms"),
    ("eventname", "not a boolean"),
    ("", "not a boolean"),
    ("read_text('/etc/passwd') IS NOT NULL", "table function"),
    ("eventname = 'unterminated", "not a SQL expression"),
])
def test_bad_predicates_are_refused_before_any_data(sql: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_where(sql)
    with pytest.raises(ValueError, match=message):
        apply_where(TABLE, sql)


def test_good_predicates_pass_the_check() -> None:
    for sql, _ in PREDICATES:
        check_where(sql)
    check_where("errormessage LIKE '%;%'")  # a ';' inside a string is text, not a statement


def test_a_predicate_failing_on_a_row_is_a_value_error() -> None:
    # The corpus holds a malformed eventTime: Athena's function fails on it, as in lake query.
    with pytest.raises(ValueError, match="failed on the replayed rows"):
        apply_where(TABLE, "from_iso8601_timestamp(eventtime) > timestamp '2000-01-01'")
