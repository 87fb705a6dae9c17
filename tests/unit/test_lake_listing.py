"""Pruned listing of the lake's Hive prefixes (:mod:`pipeline.lake.listing`) over a tiny tree
of empty files on local disk (pyarrow's LocalFileSystem), and the window's partitions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from pipeline.lake.layout import object_key
from pipeline.lake.listing import MAX_PROBES, PartitionFilter, list_events, window_filter

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REGIONS = ("us-east-1", "eu-west-1")
DAYS = ("2024-03-10", "2024-03-11")
HOURS = ("00", "13")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    for account in (*ACCOUNTS, None):
        for region in REGIONS:
            for day in DAYS:
                for hour in HOURS:
                    key = object_key(account, region, ms(f"{day}T{hour}:30:00"), "t", 0, 7)
                    (root / key).parent.mkdir(parents=True, exist_ok=True)
                    (root / key).touch()
                    (root / key).with_suffix(".tmp").touch()  # not an object of the view
    (root / "events/account=111111111111/stray.parquet").touch()
    return root / "events"


def files(lake: Path, pf: PartitionFilter) -> list[str]:
    listing = list_events(pafs.LocalFileSystem(), str(lake), pf)
    return [p[len(str(lake)) + 1:] for p in listing.files]


def test_unconstrained_lists_every_parquet_object_in_one_recursive_call(lake: Path) -> None:
    listing = list_events(pafs.LocalFileSystem(), str(lake), PartitionFilter())
    everything = sorted(str(p) for p in lake.rglob("*.parquet"))
    assert listing.files == everything and len(everything) == 4 * 2 * 2 * 2 + 1
    assert listing.calls == 1
    assert listing.listed == sum(1 for _ in lake.rglob("*"))


def test_account_region_date_goes_straight_to_the_prefix(lake: Path) -> None:
    pf = PartitionFilter(frozenset({"222222222222"}), frozenset({"eu-west-1"}),
                         frozenset({"2024-03-11"}))
    listing = list_events(pafs.LocalFileSystem(), str(lake), pf)
    assert [p.rsplit("/events/", 1)[1] for p in listing.files] == [
        f"account=222222222222/region=eu-west-1/date=2024-03-11/hour={h}/t+0+{7:019d}.parquet"
        for h in HOURS]
    # One recursive listing of the date prefix: two hour directories, two files each.
    assert (listing.calls, listing.listed) == (1, 2 + 2 * 2)


def test_an_unconstrained_level_is_listed_without_recursion(lake: Path) -> None:
    pf = PartitionFilter(regions=frozenset({"us-east-1"}), dates=frozenset({"2024-03-10"}),
                         hours=frozenset({"13"}))
    listing = list_events(pafs.LocalFileSystem(), str(lake), pf)
    assert len(listing.files) == 4
    assert all("/region=us-east-1/date=2024-03-10/hour=13/" in f for f in listing.files)
    # events/ once (4 account dirs), then each of the 4 hour prefixes (2 entries each).
    assert (listing.calls, listing.listed) == (1 + 4, 4 + 4 * 2)


def test_values_are_quoted_as_the_archiver_quotes_them(lake: Path) -> None:
    pf = PartitionFilter(accounts=frozenset({"unknown"}), dates=frozenset({"2024-03-10"}))
    assert len(files(lake, pf)) == 2 * 2
    assert files(lake, PartitionFilter(regions=frozenset({"eu/west"}))) == []


def test_missing_prefixes_and_empty_sets_list_nothing(lake: Path) -> None:
    listing = list_events(pafs.LocalFileSystem(), str(lake),
                          PartitionFilter(accounts=frozenset({"999999999999"})))
    assert listing.files == [] and listing.listed == 0
    listing = list_events(pafs.LocalFileSystem(), str(lake), PartitionFilter(dates=frozenset()))
    assert listing.files == [] and listing.calls == 0
    assert list_events(pafs.LocalFileSystem(), str(lake / "nope"), PartitionFilter()).files == []


def test_many_wanted_values_list_the_level_once_instead_of_probing(lake: Path) -> None:
    many = frozenset({"2024-03-11", *(f"1999-{i:05d}" for i in range(MAX_PROBES))})
    pf = PartitionFilter(frozenset({"111111111111"}), frozenset({"us-east-1"}), many)
    listing = list_events(pafs.LocalFileSystem(), str(lake), pf)
    assert [f.rsplit("/", 3)[1] for f in listing.files] == ["date=2024-03-11"] * 2
    assert listing.calls == 2  # the region prefix once, then the one matching date


def test_window_inside_one_day_names_its_hours() -> None:
    pf = window_filter(ms("2024-03-10T02:00:00"), ms("2024-03-10T05:00:00"),
                       accounts=frozenset({"1"}))
    assert pf == PartitionFilter(frozenset({"1"}), None, frozenset({"2024-03-10"}),
                                 frozenset({"02", "03", "04"}))
    pf = window_filter(ms("2024-03-10T02:59:59"), ms("2024-03-10T03:00:00") + 1)
    assert pf.hours == frozenset({"02", "03"})


def test_window_over_days_names_its_dates_and_any_hour() -> None:
    pf = window_filter(ms("2024-02-28T23:00:00"), ms("2024-03-01T00:00:00"))
    assert pf.dates == frozenset({"2024-02-28", "2024-02-29"}) and pf.hours is None
    pf = window_filter(ms("2024-02-28T23:00:00"), ms("2024-03-01T00:00:01"))
    assert pf.dates == frozenset({"2024-02-28", "2024-02-29", "2024-03-01"})
    assert pf.hours is None
    assert window_filter(5, 5).dates == frozenset()
