"""The report's lake connection: a file lake of two generated days (objects keyed and
written as the archiver writes them); a one-day window lists and opens that day's objects
only, an account window that account's only, and the rows the report counts are the
window's. A lake without ``aggregates/`` gives an empty ``aggregates`` view."""

from __future__ import annotations

from collections import Counter

import pytest

from consumers.archiver.objects import build_objects
from pipeline.events import IngestMeta, to_avro
from pipeline.lake.columns import to_table
from pipeline.lake.config import ArchiverConfig
from pipeline.report import queries
from pipeline.report.lake import open_window
from pipeline.report.window import DAY_MS, Window, view_sql
from producers.generator.engine import Generator

DAY0 = 1_764_201_600_000 - 1_764_201_600_000 % DAY_MS
TOPIC = "audit.events.v1"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str], Counter[str]]:
    """(URL, object keys, calls per 'date|account') of ~2 days of generated traffic."""
    root = tmp_path_factory.mktemp("lake")
    gen = Generator(3, 2, 1, start_ms=DAY0 + 20 * 3_600_000, events_per_second=0.01)
    datums = [to_avro(r, ingest=IngestMeta(DAY0, "gen", "unit", f"g#{i}"))
              for i, r in enumerate(gen.records(600))]
    table = to_table(datums, partition=0, offsets=list(range(len(datums))),
                     timestamps_ms=[DAY0] * len(datums))
    keys = []
    for obj in build_objects(table, topic=TOPIC, partition=0, cfg=ArchiverConfig()):
        (root / obj.key).parent.mkdir(parents=True, exist_ok=True)
        (root / obj.key).write_bytes(obj.data)
        keys.append(obj.key)
    calls = Counter(f"{d['eventTime'][:10]}|{d['recipientAccountId']}" for d in datums)
    return f"file://{root}", keys, calls


def test_a_day_window_opens_that_days_objects_only(lake: tuple[str, list[str], Counter[str]]
                                                   ) -> None:
    url, keys, calls = lake
    day1 = Window(DAY0 + DAY_MS, DAY0 + 2 * DAY_MS)
    views = open_window(url, None, day1)
    assert views.event_objects == sum("/date=2025-11-28/" in k for k in keys)
    assert 0 < views.event_objects < len(keys)
    assert not views.has_aggregates
    views.con.execute(view_sql(day1))
    assert queries.total_calls(views.con) == sum(
        n for key, n in calls.items() if key.startswith("2025-11-28|"))
    assert views.con.execute("SELECT count(*) FROM aggregates").fetchone() == (0,)


def test_an_account_window_opens_that_accounts_objects_only(
        lake: tuple[str, list[str], Counter[str]]) -> None:
    url, keys, calls = lake
    account = sorted(calls)[0].split("|")[1]
    window = Window(DAY0, DAY0 + 2 * DAY_MS, account)
    views = open_window(url, None, window)
    assert views.event_objects == sum(f"/account={account}/" in k for k in keys)
    views.con.execute(view_sql(window))
    assert queries.total_calls(views.con) == sum(
        n for key, n in calls.items() if key.endswith(f"|{account}"))


def test_a_window_with_no_objects_is_an_empty_view(lake: tuple[str, list[str], Counter[str]]
                                                   ) -> None:
    url, _, _ = lake
    window = Window(DAY0 + 30 * DAY_MS, DAY0 + 31 * DAY_MS)
    views = open_window(url, None, window)
    views.con.execute(view_sql(window))
    assert views.event_objects == 0 and queries.total_calls(views.con) == 0
