"""Sink conformance: every Sink of trailpipe keeps the contract of :class:`pipeline.model.Sink`
that the Runner relies on (pure: an in-memory store, no Kafka).

* ``should_flush`` is False while nothing is buffered; nothing is written before ``flush``.
* ``flush`` makes everything added durable, each item once, and is idempotent.
* A failing ``flush`` raises and keeps the buffer: after the store recovers, the next flush
  writes every item exactly once.
* ``discard`` drops what was not flushed (the Runner re-reads it).
* ``release`` of every partition leaves nothing held; ``held`` names only partitions added.
* ``healthcheck`` answers True when the store answers and False (never raises) when it fails.
* ``close`` can be called after a flush.

Each sink comes with a harness: how to make it on a store, items to add, and what it wrote.
A new Sink adds a harness to ``HARNESSES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fakes import MemStore

from consumers.archiver.sink import ArchiverSink
from consumers.digester import DigestSink
from pipeline.batches import COORDINATE_SCHEMA, with_coordinates
from pipeline.events import IngestMeta, decode, encode, to_avro
from pipeline.lake.columns import _AVRO_TYPE
from pipeline.lake.config import ArchiverConfig
from pipeline.lake.digest.model import ObjectEntry, build_digest
from pipeline.lake.fencing import Fencing
from pipeline.lake.layout import HOUR_MS, Delivery
from pipeline.lake.store import StoreUnavailable
from pipeline.model import Sink
from producers.generator.engine import Generator

TOPIC = "audit.events.v1"


@dataclass(frozen=True)
class Harness:
    """``make(store)`` builds the sink; ``items(n, start)`` gives n distinct items (their
    ids are ``start..start+n-1``); ``written(store)`` lists the ids of what is durable."""

    name: str
    make: Callable[[MemStore], Sink]
    items: Callable[[int, int], list[Any]]
    written: Callable[[MemStore], list[int]]


class _Notices:
    def delivered(self, notice: Delivery) -> None: ...
    def flush(self, timeout_s: float = 30.0) -> None: ...
    def failing(self, error: BaseException, *, key: str | None, stage: str) -> None: ...
    def recovered(self) -> None: ...
    def close(self) -> None: ...


_RAWS = [encode(to_avro(r, ingest=IngestMeta(1, "gen", "conformance"))) for r in
         Generator(3, 2, 2, start_ms=1_764_201_000_000, scenarios=()).records(64)]
_EVENTS = pa.Table.from_struct_array(pa.array([decode(r) for r in _RAWS], type=_AVRO_TYPE))


def _archiver_items(n: int, start: int) -> list[Any]:
    """One batch table per item: offset ``i`` of partition 0 (an event of the generator)."""
    out = []
    for i in range(start, start + n):
        coords = pa.Table.from_arrays(
            [pa.array([TOPIC]), pa.array([0], pa.int32()), pa.array([i], pa.int64()),
             pa.array([i], pa.int64()), pa.nulls(1, pa.binary()),
             pa.array([len(_RAWS[i % len(_RAWS)])], pa.int32())], schema=COORDINATE_SCHEMA)
        out.append(with_coordinates(_EVENTS.slice(i % len(_RAWS), 1), coords))
    return out


def _archived(store: MemStore) -> list[int]:
    return sorted(o for k, data in store.objects.items() if k.startswith("events/")
                  for o in pq.read_table(pa.BufferReader(data))["_offset"].to_pylist())


_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def _digests(n: int, start: int) -> list[Any]:
    return [build_digest(i * HOUR_MS, lake=MemStore.url, previous=None, compactions=[],
                         objects=[ObjectEntry(f"events/{i}", "00" * 32, 1, 1, TOPIC, 0, i, i)],
                         signer=_KEY, signed_at_ms=i * HOUR_MS) for i in range(start, start + n)]


def _digested(store: MemStore) -> list[int]:
    return sorted(int(k.rsplit("T", 1)[1][:2]) + 24 * (int(k.split("/")[3]) - 1)
                  for k in store.objects if k.startswith("digests/"))


HARNESSES = [
    Harness("archiver", lambda store: ArchiverSink(
        store, Fencing(store, "conformance"), _Notices(),  # type: ignore[arg-type]
        ArchiverConfig(max_records=1000), topic=TOPIC), _archiver_items, _archived),
    Harness("digester", DigestSink, _digests, _digested),
]


@pytest.fixture(params=HARNESSES, ids=lambda h: h.name)
def harness(request: pytest.FixtureRequest) -> Harness:
    return request.param  # type: ignore[no-any-return]


def _add(sink: Sink, items: list[Any]) -> None:
    for item in items:
        sink.add(item, None)


def test_implements_the_whole_protocol(harness: Harness) -> None:
    sink = harness.make(MemStore())
    for method in ("add", "should_flush", "flush", "discard", "held", "release",
                   "healthcheck", "close"):
        assert callable(getattr(sink, method, None)), method


def test_nothing_is_written_before_flush_then_all_once(harness: Harness) -> None:
    store = MemStore()
    sink = harness.make(store)
    assert sink.should_flush(0) is False
    _add(sink, harness.items(5, 0))
    assert harness.written(store) == []
    sink.flush()
    sink.flush()  # idempotent
    assert harness.written(store) == [0, 1, 2, 3, 4]
    assert sink.held() == {}
    sink.close()


def test_a_failed_flush_raises_keeps_the_buffer_and_recovers(harness: Harness) -> None:
    store = MemStore()
    sink = harness.make(store)
    _add(sink, harness.items(4, 0))
    store.fail = StoreUnavailable("mem://lake: down", "EndpointConnectionError")
    with pytest.raises(StoreUnavailable):
        sink.flush()
    store.fail = None
    sink.flush()
    assert harness.written(store) == [0, 1, 2, 3]


def test_discard_drops_what_was_not_flushed(harness: Harness) -> None:
    store = MemStore()
    sink = harness.make(store)
    _add(sink, harness.items(2, 0))
    sink.flush()
    _add(sink, harness.items(3, 2))
    sink.discard()
    assert sink.should_flush(0) is False
    sink.flush()
    assert harness.written(store) == [0, 1]


def test_release_leaves_nothing_held(harness: Harness) -> None:
    sink = harness.make(MemStore())
    _add(sink, harness.items(3, 0))
    assert set(sink.held()) <= {(TOPIC, 0)}
    sink.release([(TOPIC, 0)])
    sink.discard()
    assert sink.held() == {}


def test_healthcheck_answers_and_never_raises(harness: Harness) -> None:
    store = MemStore()
    sink = harness.make(store)
    assert sink.healthcheck() is True
    store.fail = StoreUnavailable("mem://lake: down", "EndpointConnectionError")
    assert sink.healthcheck() is False
