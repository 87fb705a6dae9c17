"""Athena-style CloudTrail investigation queries through ``lake query``, against a file lake the
archiver's object builder wrote from the corpus records; each query's rows are checked against
the same question answered in plain Python over the original CloudTrail records.

The queries are written in our own words after the kinds of examples AWS documents for querying
CloudTrail with Athena (console sign-ins without MFA, access denied by user, who deleted a
bucket, calls by one access key, top callers per hour, IAM changes in a date range, partition
filters). Only records whose ``eventTime`` has CloudTrail's own format are used: Presto's
``from_iso8601_timestamp`` (like ours) rejects the malformed times some corpus sources carry.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from consumers.archiver.objects import build_objects
from pipeline.cli.app import app
from pipeline.events import IngestMeta, decode, encode, to_avro
from pipeline.events.partition import event_key, partition_for
from pipeline.lake.columns import to_table
from pipeline.lake.config import ArchiverConfig
from pipeline.lake.query import partition_values, run_query

pytestmark = pytest.mark.integration
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "cloudtrail"
TOPIC, PARTITIONS = "audit.events.v1", 3
CLOUDTRAIL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def corpus_records() -> list[dict[str, Any]]:
    records = [json.loads(line) for path in sorted(CORPUS.glob("*/records.jsonl"))
               for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if CLOUDTRAIL_TIME.match(str(r.get("eventTime", "")))]


RECORDS = corpus_records()


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A file lake holding every record of :data:`RECORDS`, objects built and keyed exactly
    as the archiver builds them (records spread over partitions by their Kafka key)."""
    root = tmp_path_factory.mktemp("athena") / "lake"
    by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in RECORDS:
        datum = decode(encode(to_avro(record, ingest=IngestMeta(1, "corpus", "test"))))
        by_partition[partition_for(event_key(record), PARTITIONS)].append(datum)
    for partition, datums in by_partition.items():
        table = to_table(datums, partition=partition, offsets=range(len(datums)),
                         timestamps_ms=[1_700_000_000_000] * len(datums))
        for obj in build_objects(table, topic=TOPIC, partition=partition,
                                 cfg=ArchiverConfig()):
            path = root / obj.key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(obj.data)
    return f"file://{root}"


def cli(lake: str, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, ["lake", "query", "--lake", lake, "--format", "json", *args],
                              input=stdin, env={"TRAILPIPE_STORAGE__LAKE": lake},
                              catch_exceptions=False)


def query(lake: str, sql: str, tmp_path: Path) -> list[dict[str, Any]]:
    """``trailpipe lake query --file q.sql --format json`` (in-process), rows as dicts."""
    path = tmp_path / "q.sql"
    path.write_text(sql)
    result = cli(lake, "--file", str(path))
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def rows(lake: str, sql: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = run_query(lake, sql).to_pylist()
    return result


def identity(r: dict[str, Any]) -> dict[str, Any]:
    return r.get("userIdentity") or {}


def json_member(value: Any, name: str) -> str | None:
    """What Presto's json_extract_scalar(text, '$.name') gives for a free-form member."""
    v = value.get(name) if isinstance(value, dict) else None
    if v is None or isinstance(v, dict | list):
        return None
    return json.dumps(v) if isinstance(v, bool) else str(v)


def non_empty(pairs: Iterable[Any]) -> Counter[Any]:
    counts = Counter(pairs)
    assert counts, "the corpus holds no record this query is about"
    return counts


def test_struct_fields_in_lower_case_and_athena_partition_columns(lake: str) -> None:
    got = rows(lake, "SELECT eventid, useridentity.arn AS arn, "
                     "useridentity.sessioncontext.sessionissuer.username AS issuer, "
                     "region, year, month, day FROM cloudtrail")
    want = Counter((r.get("eventID"), identity(r).get("arn"),
                    ((identity(r).get("sessionContext") or {}).get("sessionIssuer")
                     or {}).get("userName"),
                    r.get("awsRegion") or "unknown", *r["eventTime"][:10].split("-"))
                   for r in RECORDS)
    assert Counter((g["eventid"], g["arn"], g["issuer"], g["region"], g["year"], g["month"],
                    g["day"]) for g in got) == want
    assert any(issuer for _, _, issuer, *_ in want)


def test_partition_filters_skip_the_objects_they_exclude(lake: str, tmp_path: Path) -> None:
    source = Path(lake.removeprefix("file://"))
    some = min(source.rglob("*.parquet"))
    relative = some.relative_to(source)
    (tmp_path / relative).parent.mkdir(parents=True)
    (tmp_path / relative).write_bytes(some.read_bytes())
    bad = tmp_path / "events/account=1/region=xx-test-1/date=1999-12-31/hour=00/t+0+0.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a parquet object")
    p = partition_values(relative.relative_to("events").as_posix())
    sql = (f"SELECT count(*) AS n FROM cloudtrail WHERE region = '{p['region']}' "
           f"AND year = '{p['year']}' AND month = '{p['month']}' AND day = '{p['day']}'")
    assert rows(f"file://{tmp_path}", sql) == [{"n": pq.read_metadata(some).num_rows}]
    with pytest.raises(duckdb.Error, match="Parquet"):  # what the filter spared us
        rows(f"file://{tmp_path}", "SELECT count(*) AS n FROM cloudtrail")


COMMENTED = """-- How many events per region? (a leading comment, as published queries have)
-- second comment line
SELECT region, count(*) AS n
FROM cloudtrail
GROUP BY region;
"""


def test_sql_from_a_file_or_stdin_may_start_with_comments(lake: str, tmp_path: Path) -> None:
    want = Counter(r.get("awsRegion") or "unknown" for r in RECORDS)
    from_file = query(lake, COMMENTED, tmp_path)
    assert {r["region"]: r["n"] for r in from_file} == want
    for args in (["-"], ["--file", "-"], ["--", COMMENTED]):
        result = cli(lake, *args, stdin=COMMENTED)
        assert result.exit_code == 0, (args, result.output)
        got = {r["region"]: r["n"] for r in map(json.loads, result.stdout.splitlines())}
        assert got == want, args


@pytest.mark.parametrize("args", [[], ["SELECT 1", "--file", "q.sql"], ["--file", "absent.sql"],
                                  ["-"]])
def test_no_sql_or_two_sources_or_an_unreadable_file_is_a_usage_error(
        lake: str, args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.sql").write_text("SELECT 1")
    result = cli(lake, *args, stdin="  \n")  # "-": stdin holds only blanks
    assert result.exit_code == 2, result.output


def first_set(*values: Any) -> Any:
    """SQL's coalesce."""
    return next((v for v in values if v is not None), None)


def issuer_name(r: dict[str, Any]) -> str | None:
    return ((identity(r).get("sessionContext") or {}).get("sessionIssuer") or {}).get("userName")


def event_time(r: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00"))


def test_console_sign_ins_without_mfa(lake: str, tmp_path: Path) -> None:
    sql = """-- Console sign-ins where MFA was not used
SELECT eventid, useridentity.arn AS arn, sourceipaddress AS ip
FROM cloudtrail
WHERE eventsource = 'signin.amazonaws.com'
  AND eventname = 'ConsoleLogin'
  AND json_extract_scalar(additionaleventdata, '$.MFAUsed') = 'No'
ORDER BY eventtime DESC;
"""
    got = Counter((r["eventid"], r["arn"], r["ip"]) for r in query(lake, sql, tmp_path))
    assert got == non_empty(
        (r.get("eventID"), identity(r).get("arn"), r.get("sourceIPAddress")) for r in RECORDS
        if r.get("eventSource") == "signin.amazonaws.com" and r.get("eventName") == "ConsoleLogin"
        and json_member(r.get("additionalEventData"), "MFAUsed") == "No")


def test_access_denied_by_user(lake: str, tmp_path: Path) -> None:
    sql = """-- Who is being refused, and how often
SELECT coalesce(useridentity.username, useridentity.sessioncontext.sessionissuer.username,
                useridentity.arn) AS who,
       count(*) AS denied
FROM cloudtrail
WHERE regexp_like(errorcode, 'AccessDenied|UnauthorizedOperation')
GROUP BY 1
ORDER BY denied DESC
"""
    got = {r["who"]: r["denied"] for r in query(lake, sql, tmp_path)}
    assert got == non_empty(
        first_set(identity(r).get("userName"), issuer_name(r), identity(r).get("arn"))
        for r in RECORDS
        if re.search("AccessDenied|UnauthorizedOperation", r.get("errorCode") or ""))


def test_who_deleted_a_bucket(lake: str, tmp_path: Path) -> None:
    sql = """-- Which principal deleted which bucket, and when
SELECT useridentity.arn AS arn,
       json_extract_scalar(requestparameters, '$.bucketName') AS bucket, eventtime
FROM cloudtrail
WHERE eventsource = 's3.amazonaws.com' AND eventname = 'DeleteBucket'
"""
    got = Counter((r["arn"], r["bucket"], r["eventtime"]) for r in query(lake, sql, tmp_path))
    assert got == non_empty(
        (identity(r).get("arn"), json_member(r.get("requestParameters"), "bucketName"),
         r["eventTime"]) for r in RECORDS
        if r.get("eventSource") == "s3.amazonaws.com" and r.get("eventName") == "DeleteBucket")


def test_calls_made_with_one_access_key(lake: str, tmp_path: Path) -> None:
    keys = Counter(identity(r).get("accessKeyId") for r in RECORDS)
    key = next(k for k, _ in keys.most_common() if k)
    sql = f"""-- Everything one (possibly leaked) access key did
SELECT eventname, count(*) AS calls
FROM cloudtrail
WHERE useridentity.accesskeyid = '{key}'
GROUP BY eventname
"""
    got = {r["eventname"]: r["calls"] for r in query(lake, sql, tmp_path)}
    assert got == non_empty(r.get("eventName") for r in RECORDS
                            if identity(r).get("accessKeyId") == key)


def test_calls_per_caller_per_hour(lake: str, tmp_path: Path) -> None:
    sql = """-- Busiest callers, hour by hour
SELECT to_iso8601(date_trunc('hour', from_iso8601_timestamp(eventtime))) AS hour_start,
       useridentity.arn AS caller, count(*) AS calls
FROM cloudtrail
WHERE useridentity.arn IS NOT NULL
GROUP BY 1, 2
ORDER BY calls DESC
"""
    got = {(r["hour_start"], r["caller"]): r["calls"] for r in query(lake, sql, tmp_path)}
    assert got == non_empty((f"{r['eventTime'][:13]}:00:00.000Z", identity(r)["arn"])
                            for r in RECORDS if identity(r).get("arn") is not None)


CHANGE = re.compile(r"^(Create|Delete|Put|Attach|Detach|Update|Add|Remove)")


def test_iam_changes_in_a_date_range(lake: str, tmp_path: Path) -> None:
    days = sorted({r["eventTime"][:10] for r in RECORDS
                   if r.get("eventSource") == "iam.amazonaws.com"})
    assert len(days) >= 3, days
    first, last = days[1], days[-2]  # a range that leaves some IAM changes out on each side
    sql = f"""-- IAM changes (not reads) between two days, both included
SELECT eventname, useridentity.arn AS arn, eventtime
FROM cloudtrail
WHERE eventsource = 'iam.amazonaws.com'
  AND regexp_like(eventname, '{CHANGE.pattern}')
  AND from_iso8601_timestamp(eventtime) >= date_parse('{first}', '%Y-%m-%d')
  AND from_iso8601_timestamp(eventtime) < date_add('day', 1, date_parse('{last}', '%Y-%m-%d'))
"""
    start = datetime.fromisoformat(first).replace(tzinfo=UTC)
    end = datetime.fromisoformat(last).replace(tzinfo=UTC) + timedelta(days=1)
    got = Counter((r["eventname"], r["arn"], r["eventtime"]) for r in query(lake, sql, tmp_path))
    want = non_empty((r["eventName"], identity(r).get("arn"), r["eventTime"]) for r in RECORDS
                     if r.get("eventSource") == "iam.amazonaws.com"
                     and CHANGE.match(r.get("eventName") or "")
                     and start <= event_time(r) < end)
    assert got == want
    assert sum(want.values()) < sum(1 for r in RECORDS if r.get("eventSource") ==
                                    "iam.amazonaws.com" and CHANGE.match(r.get("eventName", "")))


def test_services_called_in_one_partition_of_region_and_day(lake: str, tmp_path: Path) -> None:
    region, day = Counter((r.get("awsRegion"), r["eventTime"][:10]) for r in RECORDS
                          if r.get("awsRegion")).most_common(1)[0][0]
    y, m, d = day.split("-")
    sql = f"""-- Which services were called in one region on one day (partition filters only)
SELECT replace(eventsource, '.amazonaws.com') AS service, count(*) AS calls
FROM cloudtrail
WHERE region = '{region}' AND year = '{y}' AND month = '{m}' AND day = '{d}'
GROUP BY 1
"""
    got = {r["service"]: r["calls"] for r in query(lake, sql, tmp_path)}
    assert got == non_empty((r.get("eventSource") or "").replace(".amazonaws.com", "")
                            for r in RECORDS
                            if r.get("awsRegion") == region and r["eventTime"][:10] == day)


RESOURCE_MEMBERS = {"ARN", "accountId", "type", "ARNPrefix"}


def documented(resources: list[dict[str, Any]] | None) -> bool:
    """Whether ``resources`` uses only CloudTrail's member names: the lake keeps other
    spellings (``arn``, ``accountid`` in some corpus sources) losslessly in ``_unmodelled``,
    not in the ``resources`` column."""
    return all(set(res) <= RESOURCE_MEMBERS for res in resources or [])


def test_resources_touched_and_principal_names_from_arns(lake: str, tmp_path: Path) -> None:
    sql = """-- Which resources appear in events, and how often
SELECT res.arn AS arn, count(*) AS n
FROM cloudtrail
CROSS JOIN UNNEST(resources) AS t(res)
WHERE cardinality(resources) > 0
GROUP BY 1
"""
    got = {r["arn"]: r["n"] for r in query(lake, sql, tmp_path)}
    assert got == non_empty(res.get("ARN") for r in RECORDS if documented(r.get("resources"))
                            for res in r.get("resources") or [])
    sql = """SELECT element_at(split(useridentity.arn, '/'), -1) AS principal, count(*) AS n
FROM cloudtrail
WHERE useridentity.arn LIKE 'arn:aws:iam::%'
GROUP BY 1
"""
    got = {r["principal"]: r["n"] for r in query(lake, sql, tmp_path)}
    assert got == non_empty(identity(r)["arn"].split("/")[-1] for r in RECORDS
                            if (identity(r).get("arn") or "").startswith("arn:aws:iam::"))
