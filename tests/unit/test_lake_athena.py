"""Presto/Athena functions on a DuckDB connection (:mod:`pipeline.lake.athena`): each one gives
what Presto's documentation says it gives (in-memory DuckDB, no lake)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import duckdb
import pytest

from pipeline.lake.athena import MACROS, duckdb_format, install, rewrite
from pipeline.lake.query import EVENTS_SCHEMA, partition_values

DOC = '{"userName":"bob","n":3,"ok":true,"none":null,"obj":{"k":"v"},"arr":[10,20],"a b":"sp"}'


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    install(c)
    return c


def one(con: duckdb.DuckDBPyConnection, expr: str) -> Any:
    sql = f"SELECT {expr} AS v"
    return con.sql(rewrite(con, sql)).to_arrow_table().column("v")[0].as_py()


@pytest.mark.parametrize(("path", "want"), [
    ("$.userName", "bob"), ("$.n", "3"), ("$.ok", "true"), ("$.none", None),
    ("$.obj", None), ("$.arr", None), ("$.arr[1]", "20"), ("$.obj.k", "v"),
    ('$["a b"]', "sp"), ("$.missing", None)])
def test_json_extract_scalar_gives_scalars_as_text_and_null_for_containers(
        con: duckdb.DuckDBPyConnection, path: str, want: str | None) -> None:
    assert one(con, f"json_extract_scalar('{DOC}', '{path}')") == want


def test_json_extract_gives_json_and_null_for_text_that_is_not_json(
        con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, f"CAST(json_extract('{DOC}', '$.obj') AS VARCHAR)") == '{"k":"v"}'
    assert one(con, f"CAST(json_extract('{DOC}', '$[\"a b\"]') AS VARCHAR)") == '"sp"'
    assert one(con, "json_extract('not json', '$.a')") is None
    assert one(con, "json_extract_scalar('not json', '$.a')") is None


def test_iso8601_round_trip_in_utc(con: duckdb.DuckDBPyConnection) -> None:
    t = one(con, "from_iso8601_timestamp('2024-03-10T08:00:00+02:00')")
    assert t == datetime(2024, 3, 10, 6, 0, tzinfo=UTC)
    assert one(con, "to_iso8601(from_iso8601_timestamp('2024-03-10T08:00:00Z'))") == \
        "2024-03-10T08:00:00.000Z"
    assert one(con, "from_iso8601_date('2024-03-10')") == date(2024, 3, 10)
    assert one(con, "to_unixtime(from_iso8601_timestamp('1970-01-02T00:00:01.5Z'))") == 86401.5
    assert one(con, "from_unixtime(86400)") == datetime(1970, 1, 2, tzinfo=UTC)


def test_date_parse_and_date_format_take_presto_specifiers(
        con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "date_parse('2024-03-10 08:01:02', '%Y-%m-%d %H:%i:%s')") == \
        datetime(2024, 3, 10, 8, 1, 2)
    assert one(con, "DATE_PARSE('10 March 2024 7:05', '%d %M %Y %k:%i')") == \
        datetime(2024, 3, 10, 7, 5)
    assert one(con, "date_format(timestamp '2024-03-10 08:01:02', '%Y/%m/%d %T %%i')") == \
        "2024/03/10 08:01:02 %i"


def test_rewrite_touches_only_date_calls_and_keeps_comments(
        con: duckdb.DuckDBPyConnection) -> None:
    sql = "-- who: 'date_parse(x, ''%i'')'\nSELECT date_parse(eventtime, '%H:%i') FROM t"
    assert rewrite(con, sql) == ("-- who: 'date_parse(x, ''%i'')'\n"
                                 "SELECT strptime(eventtime, '%H:%M') FROM t")
    assert rewrite(con, "SELECT 1") == "SELECT 1"
    assert duckdb_format("%%i %i %M %s") == "%%i %M %B %S"


def test_date_add_and_date_diff_follow_presto(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "date_add('day', -7, timestamp '2024-03-10 08:00')") == \
        datetime(2024, 3, 3, 8, 0)
    assert one(con, "date_add('month', 1, timestamp '2024-01-31')") == datetime(2024, 2, 29)
    assert one(con, "date_add(date '2024-01-01', INTERVAL 1 DAY)") == datetime(2024, 1, 2)
    # whole units elapsed: 23:00 -> 01:00 the next day is 0 days, 2 hours
    assert one(con, "date_diff('day', timestamp '2024-01-01 23:00', "
                    "timestamp '2024-01-02 01:00')") == 0
    assert one(con, "date_diff('hour', timestamp '2024-01-01 23:00', "
                    "timestamp '2024-01-02 01:00')") == 2
    with pytest.raises(duckdb.Error, match="unknown unit"):
        one(con, "date_add('fortnight', 1, timestamp '2024-01-01')")


def test_regexp_functions_follow_presto(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "regexp_like('AccessDenied', 'Denied$')") is True
    assert one(con, "regexp_like('AccessDenied', '^Denied')") is False
    assert one(con, "regexp_extract('arn:aws:iam::1:user/bob', 'user/(.*)', 1)") == "bob"
    assert one(con, "regexp_extract('abc', 'x')") is None
    assert one(con, "regexp_replace('a1b2', '(\\d)', '<$1>')") == "a<1>b<2>"
    assert one(con, "regexp_replace('a1b2', '\\d')") == "ab"


def test_collections_and_strings_follow_presto(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "element_at(split('a/b/c', '/'), -1)") == "c"
    assert one(con, "element_at([1, 2], 5)") is None
    assert one(con, "element_at(MAP {'k': 1}, 'k')") == 1
    assert one(con, "cardinality([1, 2, 3])") == 3
    assert one(con, "replace('a-b-c', '-')") == "abc"
    assert one(con, "replace('a-b', '-', '+')") == "a+b"
    assert one(con, "array_join(['a', 'b'], ',')") == "a,b"
    assert one(con, "day_of_week(date '2024-03-10')") == 7  # a Sunday
    assert one(con, "date('2024-03-10')") == date(2024, 3, 10)


def test_every_macro_is_defined(con: duckdb.DuckDBPyConnection) -> None:
    names = {r[0] for r in con.sql("SELECT function_name FROM duckdb_functions() "
                                   "WHERE function_type = 'macro' AND "
                                   "schema_name = 'main' AND database_name = 'temp'").fetchall()}
    assert set(MACROS) <= names


def test_partition_values_add_athena_year_month_day_from_date() -> None:
    key = "account=111122223333/region=us-east-1/date=2024-03-10/hour=08/t+0+0.parquet"
    assert partition_values(key) == {
        "account": "111122223333", "region": "us-east-1", "date": "2024-03-10", "hour": "08",
        "year": "2024", "month": "03", "day": "10"}
    assert partition_values("account=unknown/region=eu%2Fx/t.parquet") == {
        "account": "unknown", "region": "eu/x"}  # no date segment: no year/month/day


def test_the_view_has_athenas_lower_case_struct_fields_and_partition_columns() -> None:
    names = EVENTS_SCHEMA.names
    assert {"region", "year", "month", "day", "account", "date", "hour"} <= set(names)
    identity = EVENTS_SCHEMA.field("useridentity").type
    issuer = identity.field("sessioncontext").type.field("sessionissuer").type
    assert {"arn", "username", "accesskeyid"} <= {f.name for f in identity}
    assert "username" in {f.name for f in issuer}


def test_presto_lambdas_run(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "filter([1, 2, 3], x -> x > 1)") == [2, 3]
    assert one(con, "transform(split('a/b', '/'), x -> upper(x))") == ["A", "B"]
    assert rewrite(con, "SELECT transform(a, x -> x) AS transformed FROM t") == \
        "SELECT list_transform(a, x -> x) AS transformed FROM t"
