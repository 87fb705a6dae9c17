"""``lake query`` lists and opens only the Hive partitions its predicates allow, and every query
gives the same rows with and without that pruning: on the file lake the archiver's object
builder wrote from the corpus (many accounts, regions and days), and on a real S3 API."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from test_lake_athena_queries import lake  # noqa: F401  (the corpus lake fixture)

from pipeline.lake.query import QueryResult, partition_values, query
from pipeline.lake.store import s3_client_for

pytestmark = pytest.mark.integration


def keys(url: str) -> list[str]:
    """The lake's object keys under ``events/``, as the file system holds them."""
    root = Path(url.removeprefix("file://"))
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet"))


def busiest(url: str) -> dict[str, str]:
    """The partition values (account, region, date, ...) of the day holding most objects."""
    days = Counter(tuple(sorted(partition_values(k.removeprefix("events/")).items()))
                   for k in keys(url))
    values = dict(max(days.items(), key=lambda item: (item[1], item[0]))[0])
    values.pop("hour")
    values["next_date"] = (date.fromisoformat(values["date"]) + timedelta(days=1)).isoformat()
    return values


def rows(result: QueryResult) -> Counter[str]:
    return Counter(json.dumps(r, sort_keys=True, default=str) for r in result.table.to_pylist())


def same_rows(url: str, sql: str, s3_endpoint: str | None = None) -> QueryResult:
    """The pruned result, after checking it gives the rows the unpruned query gives."""
    pruned = query(url, sql, s3_endpoint)
    whole = query(url, sql, s3_endpoint, prune=False)
    assert rows(pruned) == rows(whole), sql
    return pruned


def keys_of(result: QueryResult) -> list[str]:
    return ["events/" + f.split("/events/", 1)[1] for f in result.listing.files]


PRUNING = [
    "SELECT eventid, eventname, hour FROM cloudtrail WHERE account = '{account}' "
    "AND region = '{region}' AND date = '{date}'",
    "SELECT count(*) AS n, hour FROM cloudtrail WHERE region = '{region}' AND year = '{year}' "
    "AND month = '{month}' AND day = '{day}' GROUP BY hour",
    "SELECT eventid FROM cloudtrail WHERE account IN ('{account}', 'no-such-account') "
    "UNION ALL SELECT eventid FROM cloudtrail c WHERE c.account = '{account}' "
    "AND c.date = '{date}'",
    "SELECT a.eventid FROM cloudtrail a JOIN cloudtrail b ON a.eventid = b.eventid "
    "WHERE a.account = '{account}' AND b.account = '{account}' AND a.region = '{region}'",
    "SELECT eventid, date FROM cloudtrail WHERE account = '{account}' AND date >= '{date}' "
    "AND date < '{next_date}'",
    "SELECT eventid, hour FROM cloudtrail WHERE region = '{region}' AND year = '{year}' "
    "AND month = '{month}' AND day BETWEEN '{day}' AND '31' AND hour <> '99'",
    "SELECT eventname, count(*) AS n FROM cloudtrail WHERE account = '{account}' "
    "AND eventid IN (SELECT eventid FROM cloudtrail WHERE date = '{date}' "
    "AND account = '{account}') GROUP BY ALL",
]
WHOLE = [
    "SELECT eventid FROM cloudtrail WHERE account = '{account}' OR region = '{region}'",
    "SELECT eventid FROM cloudtrail WHERE lower(account) = '{account}' "
    "AND substr(date, 1, 10) = '{date}'",
    "SELECT account, region, count(*) AS n FROM cloudtrail GROUP BY ALL",
    "SELECT a.eventid, b.account FROM cloudtrail a LEFT JOIN cloudtrail b "
    "ON a.eventid = b.eventid AND b.region <> a.region WHERE a.account = '{account}'",
    "SELECT * FROM (SELECT eventid, account FROM cloudtrail) t WHERE account = '{account}'",
    "SELECT eventid FROM cloudtrail WHERE account = '{account}' "
    "AND eventid NOT IN (SELECT eventid FROM cloudtrail WHERE region <> '{region}' "
    "AND eventid IS NOT NULL)",
]


@pytest.mark.parametrize("template", PRUNING)
def test_pruned_queries_list_fewer_objects_and_give_the_same_rows(
        lake: str, template: str) -> None:  # noqa: F811
    sql = template.format(**busiest(lake))
    result = same_rows(lake, sql)
    assert result.table.num_rows > 0
    assert 0 < len(result.listing.files) < len(keys(lake))
    assert result.listing.listed < len(keys(lake))


@pytest.mark.parametrize("template", WHOLE)
def test_queries_not_provably_restricted_read_the_whole_lake(
        lake: str, template: str) -> None:  # noqa: F811
    result = same_rows(lake, template.format(**busiest(lake)))
    assert result.table.num_rows > 0
    assert keys_of(result) == keys(lake)


def test_one_account_region_and_day_opens_exactly_its_objects(lake: str) -> None:  # noqa: F811
    p = busiest(lake)
    result = same_rows(lake, PRUNING[0].format(**p))
    prefix = f"events/account={p['account']}/region={p['region']}/date={p['date']}/"
    assert keys_of(result) == [k for k in keys(lake) if k.startswith(prefix)]
    hours = {k.split("/")[4] for k in keys(lake) if k.startswith(prefix)}
    # One recursive listing of the day's prefix: its hour directories and their objects.
    assert (result.listing.calls, result.listing.listed) == (1, len(hours) + len(keys_of(result)))


def test_a_query_pruned_to_nothing_is_an_empty_result(lake: str) -> None:  # noqa: F811
    result = same_rows(lake, "SELECT eventid FROM cloudtrail WHERE account = 'no-such-account'")
    assert result.table.num_rows == 0 and result.listing.listed == 0


def test_s3_lake_prunes_by_prefix_listing(lake: str, s3_endpoint: str,  # noqa: F811
                                          unique: str) -> None:
    client = s3_client_for(s3_endpoint)
    bucket = f"pruned-{unique}"
    client.create_bucket(Bucket=bucket)
    root = Path(lake.removeprefix("file://"))
    for key in keys(lake):
        client.put_object(Bucket=bucket, Key=f"prod/{key}", Body=(root / key).read_bytes())
    url = f"s3://{bucket}/prod"
    p = busiest(lake)
    result = same_rows(url, PRUNING[0].format(**p), s3_endpoint)
    prefix = f"events/account={p['account']}/region={p['region']}/date={p['date']}/"
    assert keys_of(result) == [k for k in keys(lake) if k.startswith(prefix)]
    assert result.listing.listed < len(keys(lake)) // 10
    region_wide = same_rows(url, PRUNING[1].format(**p), s3_endpoint)
    assert region_wide.table.num_rows > 0 and region_wide.listing.listed < len(keys(lake))
    everything = same_rows(url, WHOLE[2].format(**p), s3_endpoint)
    assert keys_of(everything) == keys(lake)
