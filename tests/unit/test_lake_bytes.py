"""The lake bytes the archiver's and the aggregator's summaries count (exported as
``trailpipe_lake_bytes_total``): the Parquet bytes of every object put, a retried put again."""

from __future__ import annotations

import pytest
from fakes import Crash, MemStore
from test_aggregates_sink import ROWS
from test_archiver_sink import Notices, make_sink, offsets

from consumers.aggregator.daemon import wire
from pipeline.config import Config
from pipeline.daemon import Context


def put_bytes(store: MemStore, prefix: str) -> int:
    """Bytes of every put under ``prefix``, repeats included."""
    return sum(len(data) for key, data in store.puts if key.startswith(prefix))


def lake_bytes(store: MemStore, prefix: str) -> int:
    """Bytes of the objects under ``prefix`` now in the lake."""
    return sum(len(data) for key, data in store.objects.items() if key.startswith(prefix))


def test_the_archiver_counts_each_uploaded_object_and_a_re_upload_again() -> None:
    store, notices = MemStore(), Notices()
    crashed = make_sink(store, notices, "a", crash_at_upload=2)
    crashed.add(offsets(0, 0, 200), None)
    with pytest.raises(Crash):
        crashed.flush()
    assert crashed.objects_written == 2
    assert crashed.bytes_written == put_bytes(store, "events/") > 0

    notices = Notices()  # the crashed writer's queued notices died with it
    taker = make_sink(store, notices, "b")  # re-writes the declared range, same bytes
    taker.add(offsets(0, 0, 200), None)
    taker.flush()
    assert taker.rows_written == 200
    assert taker.objects_written == len([k for k in store.objects if k.startswith("events/")])
    assert taker.bytes_written == lake_bytes(store, "events/") == sum(
        n.size_bytes for n in notices.durable)
    assert crashed.bytes_written + taker.bytes_written == put_bytes(store, "events/")


def test_the_aggregator_summary_counts_lake_bytes_per_put() -> None:
    store = MemStore()
    parts = wire(Context(Config(), "unused:9092", hooks={"store": store, "monitor": False}))
    sink = parts.sink
    assert sink is not None and parts.summary()["lake_bytes"] == 0
    for row in ROWS:
        sink.add(row, None)
    sink.flush()
    once = parts.summary()
    assert once["lake_bytes"] == lake_bytes(store, "aggregates/") > 0
    assert once["lake_objects"] == len([k for k, _ in store.puts if k.startswith("aggregates/")])

    for row in ROWS:  # a retried cycle: the same objects put again, counted again
        sink.add(row, None)
    sink.flush()
    assert parts.summary()["lake_bytes"] == 2 * once["lake_bytes"] == put_bytes(
        store, "aggregates/")
    assert lake_bytes(store, "aggregates/") == once["lake_bytes"]
