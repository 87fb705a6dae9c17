"""``trailpipe report``'s sections, over an in-memory ``cloudtrail`` view of generated traffic
(every attack scenario, plus one cross-account AssumeRole and a hostile principal name), each
checked against a count made here from the raw CloudTrail records; the page: one plotly div
per chart, plotly.js inline once, no network script, cells escaped, "no data" sections."""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pytest

from pipeline.aggregates.insights import Insight
from pipeline.aggregates.table import to_table as aggregate_table
from pipeline.events import IngestMeta, parse_event_time, to_avro
from pipeline.lake import athena
from pipeline.lake.columns import to_table
from pipeline.lake.query import EVENTS_SCHEMA
from pipeline.report import aggregated, extras, queries
from pipeline.report.build import Report, build_report
from pipeline.report.sections import NO_DATA, Inputs
from pipeline.report.window import HOUR_MS, Window, view_sql
from producers.generator.engine import SCENARIOS, Generator

T0 = 1_764_201_000_000
HOSTILE = "arn:aws:iam::111111111111:user/<script>alert(1)</script>"
OTHER_ACCOUNT = "999999999999"


def _records() -> list[dict[str, Any]]:
    gen = Generator(7, 3, 2, start_ms=T0, scenarios=tuple(SCENARIOS), events_per_second=1,
                    scenario_every=2000)
    records = list(gen.records(3000))
    assume = next(r for r in records if r["eventName"] == "AssumeRole"
                  and r["userIdentity"].get("accountId"))
    cross = copy.deepcopy(assume)  # a role in another account: a cross-account edge
    cross["eventID"] = "cross-account-assume"
    cross["requestParameters"]["roleArn"] = f"arn:aws:iam::{OTHER_ACCOUNT}:role/audit"
    hostile = copy.deepcopy(records[10])
    hostile["eventID"] = "hostile"
    hostile["userIdentity"]["arn"] = HOSTILE
    return [*records, cross, hostile]


RECORDS = _records()


def _table(records: list[dict[str, Any]]) -> pa.Table:
    """The ``cloudtrail`` view's rows: the lake columns plus the partition columns."""
    datums = [to_avro(r, ingest=IngestMeta(T0 + i, "gen", "unit", f"g#{i}"))
              for i, r in enumerate(records)]
    lake = to_table(datums, partition=0, offsets=list(range(len(datums))),
                    timestamps_ms=[T0] * len(datums))
    n = lake.num_rows
    columns = {f.name: lake[f.name] if f.name in lake.column_names else pa.nulls(n, f.type)
               for f in EVENTS_SCHEMA}
    columns["account"] = pa.array([r["recipientAccountId"] for r in records])
    columns["region"] = pa.array([r["awsRegion"] for r in records])
    return pa.table(columns, schema=EVENTS_SCHEMA)


H0 = T0 - T0 % HOUR_MS
A1, A2 = "111111111111", "222222222222"


def _part(start_ms: int, account: str, name: str, count: int, emitted_ms: int = 1,
          **kw: Any) -> dict[str, Any]:
    """An Aggregate row of a 1h window (a base record unless ``correction=True``)."""
    return {"window_size": "1h", "window_start_ms": start_ms,
            "window_end_ms": start_ms + HOUR_MS, "account": account, "region": "us-east-1",
            "event_source": "s3.amazonaws.com", "event_name": name, "outcome": "OK",
            "identity_type": "IAMUser", "count": count, "distinct_principals": 1,
            "distinct_source_ips": 1, "partition": 0, "trigger_offset": 0,
            "watermark_ms": start_ms, "emitted_ms": emitted_ms, **kw}


AGGREGATES = [
    _part(H0, A1, "ListBuckets", 10),
    _part(H0, A1, "ListBuckets", 10, emitted_ms=2),  # a replay's copy: same key, not added
    _part(H0, A1, "ListBuckets", 3, correction=True, trigger_offset=5),  # late: added
    _part(H0, A2, "ListBuckets", 4),
    _part(H0, A1, "GetObject", 20),
    _part(H0 + HOUR_MS, A1, "ListBuckets", 1),
    _part(H0 - 5 * HOUR_MS, A1, "GetObject", 99),  # before the window
]


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    athena.install(connection)
    connection.register("cloudtrail", _table(RECORDS))
    connection.register("aggregates", aggregate_table(AGGREGATES))
    yield connection
    connection.close()


def _time_ms(record: dict[str, Any]) -> int:
    time_ms = parse_event_time(record)[0]
    assert time_ms is not None
    return time_ms


def _principal(record: dict[str, Any]) -> str:
    ui = record["userIdentity"]
    return str(ui.get("arn") or ui.get("principalId") or ui.get("type") or "unknown")


def _in(window: Window) -> list[dict[str, Any]]:
    return [r for r in RECORDS if window.contains(_time_ms(r), r["recipientAccountId"])]


WHOLE = Window(T0 - HOUR_MS, T0 + 3 * HOUR_MS)


def _run(con: duckdb.DuckDBPyConnection, window: Window, **kw: Any) -> Report:
    inputs = Inputs(con, window, kw.pop("top", 10), kw.pop("alerts", None),
                    kw.pop("insights", None), "no alerts file", "no insights read")
    return build_report(inputs)


def test_calls_per_account_region_and_bucket_match_the_records(con: duckdb.DuckDBPyConnection
                                                                ) -> None:
    con.execute(view_sql(WHOLE))
    bucket = WHOLE.bucket_ms
    got = {(r["bucket_ms"], r["account"], r["region"]): r["calls"]
           for r in queries.calls_over_time(con, bucket)}
    want = Counter((_time_ms(r) // bucket * bucket, r["recipientAccountId"], r["awsRegion"])
                   for r in RECORDS)
    assert got == dict(want) and len(want) > 3


def test_a_window_and_an_account_keep_only_their_rows(con: duckdb.DuckDBPyConnection) -> None:
    account = RECORDS[0]["recipientAccountId"]
    window = Window(T0 + 10 * 60_000, T0 + 20 * 60_000, account)
    con.execute(view_sql(window))
    expected = _in(window)
    assert 0 < len(expected) < len(RECORDS)
    assert queries.total_calls(con) == len(expected)
    assert {r["account"] for r in queries.calls_by_account_region(con, 10)} == {account}


def test_errors_principals_ips_match_the_records(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(view_sql(WHOLE))
    bucket = WHOLE.bucket_ms
    errors = Counter(_time_ms(r) // bucket * bucket for r in RECORDS if r.get("errorCode"))
    series = queries.errors_over_time(con, bucket)
    assert {r["bucket_ms"]: r["errors"] for r in series if r["errors"]} == dict(errors)
    assert all(r["error_rate"] == r["errors"] / r["calls"] for r in series)
    principals = Counter(_principal(r) for r in RECORDS)
    top = queries.top_principals(con, 5)
    assert [(r["principal"], r["calls"]) for r in top] == sorted(
        principals.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    ips = Counter(r["sourceIPAddress"] for r in RECORDS)
    assert {r["source_ip"]: r["calls"] for r in queries.top_source_ips(con, 3)} == dict(
        sorted(ips.items(), key=lambda kv: (-kv[1], kv[0]))[:3])


def test_console_logins_by_mfa_and_access_denied_by_principal(con: duckdb.DuckDBPyConnection
                                                              ) -> None:
    con.execute(view_sql(WHOLE))
    logins = [r for r in RECORDS if r["eventName"] == "ConsoleLogin"]
    mfa = Counter(r["additionalEventData"]["MFAUsed"] for r in logins)
    got = Counter[str]()
    for row in queries.console_logins_over_time(con, WHOLE.bucket_ms):
        got[row["mfa"]] += row["logins"]
    assert got == mfa and set(mfa) == {"Yes", "No"}  # the scenarios log in without MFA
    failures = sum(r["responseElements"]["ConsoleLogin"] != "Success" for r in logins)
    assert sum(r["failures"] for r in queries.console_logins(con, 1000)) == failures > 0
    denied = Counter(_principal(r) for r in RECORDS
                     if r.get("errorCode") in queries.ACCESS_DENIED_CODES)
    assert {r["principal"]: r["denied"] for r in queries.access_denied(con, 1000)} == denied


def test_role_assumptions_are_source_to_target_account_edges(con: duckdb.DuckDBPyConnection
                                                             ) -> None:
    con.execute(view_sql(WHOLE))
    edges = Counter(
        (r["userIdentity"].get("accountId") or "external",
         re.match(r"arn:aws:iam::(\d+):", r["requestParameters"]["roleArn"]).group(1))  # type: ignore[union-attr]
        for r in RECORDS if r["eventName"].startswith("AssumeRole"))
    got = {(r["source_account"], r["target_account"]): r["calls"]
           for r in queries.role_assumptions(con, 1000)}
    assert got == edges
    assert any(t == OTHER_ACCOUNT and s != OTHER_ACCOUNT for s, t in got)


def test_aggregates_are_merged_per_event_name_and_hour(con: duckdb.DuckDBPyConnection
                                                       ) -> None:
    start, end = H0 - HOUR_MS, H0 + 2 * HOUR_MS
    got = {(r["bucket_ms"], r["event_name"]): r["calls"]
           for r in aggregated.event_names_per_hour(con, start, end, None)}
    assert got == {(H0, "ListBuckets"): 17, (H0, "GetObject"): 20,
                   (H0 + HOUR_MS, "ListBuckets"): 1}
    one = aggregated.event_names_per_hour(con, start, end, A2)
    assert [(r["event_name"], r["calls"]) for r in one] == [("ListBuckets", 4)]
    series = aggregated.event_names_per_hour(con, start, end, None)
    assert aggregated.top_event_names(series, 1) == [{"event_name": "GetObject", "calls": 20}]
    assert aggregated.top_event_names(series, 5)[1] == {"event_name": "ListBuckets",
                                                        "calls": 18}


def _alert(alert_id: str, severity: str, rule: str, t_ms: int, **kw: Any) -> dict[str, Any]:
    return {"alert_id": alert_id, "severity": severity, "rule_id": rule, "title": f"{rule}!",
            "first_seen_ms": t_ms, "window_start_ms": t_ms, "account": "111111111111",
            "count": 1, "update": 0, "created_ms": t_ms, **kw}


def test_alerts_file_keeps_the_latest_update_and_counts_by_severity_and_rule(tmp_path: Any
                                                                             ) -> None:
    alerts = [_alert("a", "high", "r1", T0), _alert("b", "low", "r2", T0 + 1000),
              _alert("a", "high", "r1", T0, update=2, count=7),
              _alert("c", "high", "r1", T0 + 2 * HOUR_MS)]
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(a) for a in alerts) + b"\n\n")
    loaded = extras.load_alerts(path)
    assert sorted((a["alert_id"], a["count"]) for a in loaded) == [("a", 7), ("b", 1),
                                                                    ("c", 1)]
    kept = extras.alerts_in(loaded, Window(T0, T0 + HOUR_MS))
    assert extras.alerts_by_rule(kept, 10) == [
        {"rule_id": "r1", "severity": "high", "alerts": 1, "events": 7, "title": "r1!"},
        {"rule_id": "r2", "severity": "low", "alerts": 1, "events": 1, "title": "r2!"}]
    path.write_bytes(b'{"severity": "high"}\n')
    with pytest.raises(extras.AlertsFileError, match=r"alerts.jsonl:1: not an alert"):
        extras.load_alerts(path)


def _insight(shared: str, start_ms: int | None, end_ms: int | None) -> Insight:
    return Insight(shared, "111111111111", "us-east-1", "iam.amazonaws.com", "CreateUser",
                   "ApiCallRateInsight", start_ms, end_ms, 1.0, 9.0, HOSTILE, None, None)


def test_insights_in_the_window_include_open_ones() -> None:
    found = [_insight("early", T0 - 3 * HOUR_MS, T0 - 2 * HOUR_MS),
             _insight("inside", T0, T0 + HOUR_MS), _insight("open", T0 + 60_000, None)]
    kept = extras.insights_in(found, Window(T0 - HOUR_MS, T0 + 2 * HOUR_MS))
    assert [i.shared_event_id for i in kept] == ["inside", "open"]
    assert extras.insights_in(found, Window(T0, T0 + HOUR_MS, "222222222222")) == []


def _chart_divs(page: str) -> list[str]:
    return re.findall(r'<div class="chart" id="chart-([a-z_]+)">', page)


def test_page_has_one_plotly_div_per_chart_inline_js_once_and_escaped_cells(
        con: duckdb.DuckDBPyConnection) -> None:
    alerts = [_alert("a", "critical", "<b>rule</b>", T0 + 1000)]
    report = _run(con, WHOLE, alerts=alerts, insights=[_insight("i", T0, T0 + HOUR_MS)])
    page = report.html
    charts = [s.key for s in report.sections if s.figure is not None]
    assert len(charts) == len(report.sections) == 10
    assert _chart_divs(page) == charts
    for key in charts:
        assert page.count(f'id="plot-{key}"') == 1
    assert len(re.findall(r"<script[^>]*\bsrc=", page)) == 0
    assert not re.search(r"<script[^>]*src=[\"']https?://", page)
    assert page.count("Plotly.register") <= 1 and "plotly.js v" in page  # inlined, once
    assert "<script>alert(1)</script>" not in page  # neither in a cell nor in chart JSON
    assert "user/&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;rule&lt;/b&gt;" in page and "<td><b>rule</b>" not in page
    assert report.calls == len(RECORDS)


def test_an_empty_window_says_no_data_in_every_section(con: duckdb.DuckDBPyConnection) -> None:
    report = _run(con, Window(T0 + 30 * 24 * HOUR_MS, T0 + 31 * 24 * HOUR_MS), alerts=[],
                  insights=[])
    assert report.calls == 0 and report.summary()["charts"] == 0
    assert {s.note for s in report.sections} == {NO_DATA}
    assert _chart_divs(report.html) == [] and "plotly.js v" not in report.html
    assert report.html.count(NO_DATA) == len(report.sections)


def test_sources_not_given_are_named_in_their_sections(con: duckdb.DuckDBPyConnection) -> None:
    report = _run(con, WHOLE)
    notes = report.summary()["sections"]
    assert notes["alerts"] == {"note": "no alerts file"}
    assert notes["insights"] == {"note": "no insights read"}
    assert notes["calls"] == {"rows": 6}  # 3 accounts x 2 regions
    assert notes["event_names"] == {"rows": 2}  # GetObject, ListBuckets


def test_window_bucket_and_bounds() -> None:
    assert Window(0, 6 * HOUR_MS).bucket_ms == 300_000
    assert Window(0, 3 * 24 * HOUR_MS).bucket_ms == HOUR_MS
    assert Window(0, 30 * 24 * HOUR_MS).bucket_ms == 24 * HOUR_MS
    with pytest.raises(ValueError):
        Window(5, 5)
    assert "account = 'o''brien'" in view_sql(Window(0, 1, "o'brien"))
