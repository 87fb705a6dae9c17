"""The partitions a query's SQL allows (:mod:`pipeline.lake.prune`), read with DuckDB's parser
(in-memory DuckDB, no lake): only what provably removes rows constrains the listing."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.lake.listing import PartitionFilter
from pipeline.lake.prune import ANY, partition_filter


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def s(*values: str) -> frozenset[str]:
    return frozenset(values)


@pytest.mark.parametrize(("sql", "want"), [
    ("SELECT * FROM cloudtrail WHERE account = '111' AND region = 'us-east-1' "
     "AND date = '2024-03-10' AND hour = '05'",
     PartitionFilter(s("111"), s("us-east-1"), s("2024-03-10"), s("05"))),
    ("SELECT count(*) FROM cloudtrail c WHERE '111' = c.account AND c.region IN ('a', 'b') "
     "AND eventname = 'X'",
     PartitionFilter(s("111"), s("a", "b"))),
    ("SELECT * FROM CloudTrail WHERE ACCOUNT = '1' AND (region = 'a' AND hour IN ('01', '02'))",
     PartitionFilter(s("1"), s("a"), None, s("01", "02"))),
    ("SELECT * FROM cloudtrail WHERE region IN ('a', 'b') AND region = 'b'",
     PartitionFilter(regions=s("b"))),
    ("SELECT * FROM cloudtrail WHERE year = '2024' AND month = '03' AND day = '10'",
     PartitionFilter(dates=s("2024-03-10"))),
    ("SELECT * FROM cloudtrail WHERE date IN ('2024-03-10', '2024-04-10') AND month = '04'",
     PartitionFilter(dates=s("2024-04-10"))),
    ("SELECT * FROM cloudtrail WHERE year = '2023' AND day = '31' AND month IN ('01', '02')",
     PartitionFilter(dates=s("2023-01-31"))),
    ("SELECT * FROM cloudtrail WHERE account = '1' UNION ALL "
     "SELECT * FROM cloudtrail WHERE account = '2' AND region = 'r'",
     PartitionFilter(accounts=s("1", "2"))),
    ("SELECT * FROM cloudtrail a JOIN cloudtrail b ON a.eventid = b.eventid "
     "WHERE a.account = '1' AND b.account = '2' AND a.region = 'r' AND b.region = 'r'",
     PartitionFilter(s("1", "2"), s("r"))),
    ("WITH x AS (SELECT * FROM cloudtrail WHERE region = 'r') SELECT * FROM x "
     "WHERE account = '1'",
     PartitionFilter(regions=s("r"))),
    ("SELECT * FROM cloudtrail WHERE account = '1' AND eventid IN "
     "(SELECT eventid FROM cloudtrail WHERE account = '2')",
     PartitionFilter(accounts=s("1", "2"))),
])
def test_conjunctive_equalities_constrain_the_listing(
        con: duckdb.DuckDBPyConnection, sql: str, want: PartitionFilter) -> None:
    assert partition_filter(con, sql) == want


@pytest.mark.parametrize(("where", "dates"), [
    ("date BETWEEN '2024-02-27' AND '2024-03-01'",
     s("2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01")),
    ("date >= '2023-02-27' AND '2023-03-01' > date", s("2023-02-27", "2023-02-28")),
    ("date > '2023-12-30' AND date <= '2024-01-01' AND account = '1'",
     s("2023-12-31", "2024-01-01")),
    ("date > '2024-02-27' AND date < '2024-03-01' AND date IN ('2024-02-28', '2024-05-01')",
     s("2024-02-28")),
    ("date >= '2024-03-02' AND date < '2024-03-01'", s()),
    ("date > '2024-02-27'", None),
    ("date >= '2024-02' AND date < '2024-03'", None),
    ("date NOT BETWEEN '2024-03-02' AND '2024-03-05'", None),
    ("date BETWEEN '2000-01-01' AND '2024-03-05'", None),
])
def test_a_date_range_with_both_ends_enumerates_its_days(
        con: duckdb.DuckDBPyConnection, where: str, dates: frozenset[str] | None) -> None:
    assert partition_filter(con, f"SELECT * FROM cloudtrail WHERE {where}").dates == dates


def hours(first: int, last: int) -> frozenset[str]:
    return frozenset(f"{h:02d}" for h in range(first, last + 1))


@pytest.mark.parametrize(("where", "want"), [
    ("hour >= '02' AND '05' > hour", PartitionFilter(hours=hours(2, 4))),
    ("hour NOT IN ('00', '01') AND hour <> '23' AND hour > '19'",
     PartitionFilter(hours=hours(20, 22))),
    ("hour BETWEEN '22' AND '99'", PartitionFilter(hours=hours(22, 23))),
    ("hour < '1'", PartitionFilter(hours=hours(0, 9))),  # text order: '09' < '1'
    ("year = '2024' AND month = '03' AND day BETWEEN '01' AND '03'",
     PartitionFilter(dates=s("2024-03-01", "2024-03-02", "2024-03-03"))),
    ("year = '2023' AND month > '11' AND day >= '30'",
     PartitionFilter(dates=s("2023-12-30", "2023-12-31"))),
    ("hour > 5 AND region <> 'r' AND day < '05'", ANY),
])
def test_text_comparisons_on_hour_month_and_day_keep_the_values_they_allow(
        con: duckdb.DuckDBPyConnection, where: str, want: PartitionFilter) -> None:
    assert partition_filter(con, f"SELECT * FROM cloudtrail WHERE {where}") == want


def test_a_year_enumerates_its_calendar_days(con: duckdb.DuckDBPyConnection) -> None:
    dates = partition_filter(con, "SELECT * FROM cloudtrail WHERE year = '2024'").dates
    assert dates is not None and len(dates) == 366 and "2024-02-29" in dates
    pf = partition_filter(con, "SELECT * FROM cloudtrail WHERE year = '2023' AND month = '02'")
    assert pf.dates is not None and len(pf.dates) == 28
    assert partition_filter(con, "SELECT * FROM cloudtrail WHERE year = 'x'").dates == s()


@pytest.mark.parametrize("sql", [
    "SELECT * FROM cloudtrail",
    "SELECT * FROM cloudtrail WHERE account = '1' OR region = 'r'",
    "SELECT * FROM cloudtrail WHERE NOT (account = '1')",
    "SELECT * FROM cloudtrail WHERE account <> '1' AND account NOT IN ('2')",
    "SELECT * FROM cloudtrail WHERE lower(account) = '1' AND region LIKE 'us-%'",
    "SELECT * FROM cloudtrail WHERE year = 2024 AND hour = 5",
    "SELECT * FROM cloudtrail WHERE month = '03' AND day = '10'",
    "SELECT * FROM cloudtrail WHERE account = region",
    "SELECT * FROM cloudtrail a JOIN cloudtrail b ON a.eventid = b.eventid WHERE a.account = '1'",
    "SELECT * FROM cloudtrail a LEFT JOIN cloudtrail b ON a.eventid = b.eventid "
    "WHERE a.account = '1' AND b.account = '1'",
    "SELECT * FROM cloudtrail c, other o WHERE o.account = '1'",
    "SELECT * FROM cloudtrail WHERE account = '1' AND eventid IN (SELECT eventid FROM cloudtrail)",
    "SELECT * FROM (SELECT * FROM cloudtrail) t WHERE account = '1'",
    "WITH cloudtrail AS (SELECT '1' AS account) SELECT * FROM cloudtrail WHERE account = '1'",
    "SELECT * FROM cloudtrail WHERE account = '1'; SELECT * FROM cloudtrail",
    "SELECT * FROM cloudtrail c JOIN cloudtrail d ON true WHERE account = '1'",
    "SELEC nonsense",
])
def test_anything_not_provably_restrictive_leaves_the_listing_whole(
        con: duckdb.DuckDBPyConnection, sql: str) -> None:
    assert partition_filter(con, sql) == ANY


def test_a_query_naming_no_view_keeps_the_listing_whole(
        con: duckdb.DuckDBPyConnection) -> None:
    # A table function can read the view without a table reference the tree shows.
    sql = "SELECT * FROM query_table('cloudtrail') WHERE account = '1'"
    assert partition_filter(con, sql) == ANY
