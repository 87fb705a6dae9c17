"""The hot read loop against a scripted consumer (no broker): ranges, ends, counters."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError

from pipeline.config import Config
from pipeline.daemon import events_decoder
from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, parse_event_time, to_avro
from pipeline.replay.config import ReplayConfig
from pipeline.replay.filters import Filters
from pipeline.replay.hot import OFFSET, PARTITION, ReplayError, read_plan
from pipeline.replay.plan import PartitionRange, Plan

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "records.jsonl:1")
RECORDS = [json.loads(line) for p in sorted(CORPUS.glob("*/records.jsonl"))
           for line in p.read_text().splitlines() if line.strip()][:300]
VALUES = [wire.encode(to_avro(r, ingest=INGEST)) for r in RECORDS]
CFG = ReplayConfig(batch_size=7, idle_timeout_ms=100)


@dataclass
class Msg:
    p: int
    o: int
    v: bytes | None = None
    eof: bool = False

    def partition(self) -> int:
        return self.p

    def offset(self) -> int:
        return self.o

    def value(self) -> bytes | None:
        return self.v

    def error(self) -> Any:
        return KafkaError(KafkaError._PARTITION_EOF) if self.eof else None


class ScriptedConsumer:
    """Partition p holds VALUES[p::2] at offsets 0..; serves from the assigned positions,
    interleaving partitions, with an EOF event at each log end (``log_end``)."""

    def __init__(self, log_end: dict[int, int]) -> None:
        self.log_end = log_end
        self.queue: list[Msg] = []
        self.paused: set[int] = set()
        self.assigned: list[int] = []

    def assign(self, tps: list[Any]) -> None:
        self.assigned = [tp.partition for tp in tps]
        per = {tp.partition: [Msg(tp.partition, o, VALUES[tp.partition::2][o])
                              for o in range(tp.offset, self.log_end[tp.partition])]
               + [Msg(tp.partition, self.log_end[tp.partition], eof=True)] for tp in tps}
        while any(per.values()):
            for msgs in per.values():
                if msgs:
                    self.queue.append(msgs.pop(0))

    def consume(self, n: int, timeout: float) -> list[Msg]:
        out = [m for m in self.queue if m.p not in self.paused][:n]
        self.queue = [m for m in self.queue if m not in out and m.p not in self.paused]
        return out

    def pause(self, tps: list[Any]) -> None:
        self.paused |= {tp.partition for tp in tps}

    def unassign(self) -> None:
        self.assigned = []


ALL = Filters(0, 2**62)


def test_each_partition_is_read_from_start_to_end_only() -> None:
    half = len(VALUES) // 2
    consumer = ScriptedConsumer({0: half, 1: half})
    plan = Plan("t", 2, 0, (PartitionRange(0, 10, 50, 0), PartitionRange(1, 0, 3, 0)))
    got = read_plan(consumer, plan, ALL, events_decoder(Config()), CFG)  # type: ignore[arg-type]
    coords = sorted(zip(got.table.column(PARTITION).to_pylist(),
                        got.table.column(OFFSET).to_pylist(), strict=True))
    timed = {(p, o) for p in (0, 1) for o in range(half)
             if parse_event_time(RECORDS[2 * o + p])[0] is not None}
    expected = sorted(c for c in timed if (c[0] == 0 and 10 <= c[1] < 50) or
                      (c[0] == 1 and c[1] < 3))
    assert coords == expected
    assert (got.counts[0].scanned, got.counts[1].scanned) == (40, 3)
    assert got.summary()["matched"] == len(expected) < 43


def test_an_eof_before_the_captured_end_finishes_the_partition() -> None:
    consumer = ScriptedConsumer({0: 5})  # e.g. read_committed stops at the last stable offset
    plan = Plan("t", 1, 0, (PartitionRange(0, 0, 9, 0),))
    got = read_plan(consumer, plan, ALL, events_decoder(Config()), CFG)  # type: ignore[arg-type]
    assert got.counts[0].scanned == 5


def test_empty_ranges_are_not_assigned() -> None:
    consumer = ScriptedConsumer({0: 5, 1: 5})
    plan = Plan("t", 2, 0, (PartitionRange(0, 5, 5, 0), PartitionRange(1, 0, 2, 0)))
    got = read_plan(consumer, plan, ALL, events_decoder(Config()), CFG)  # type: ignore[arg-type]
    assert (got.counts[0].scanned, got.counts[1].scanned) == (0, 2)


def test_undecodable_values_are_counted_and_skipped() -> None:
    consumer = ScriptedConsumer({0: 3})
    consumer.assign = lambda tps: setattr(consumer, "queue", [  # type: ignore[method-assign]
        Msg(0, 0, VALUES[0]), Msg(0, 1, b"garbage"), Msg(0, 2, VALUES[2])])
    plan = Plan("t", 1, 0, (PartitionRange(0, 0, 3, 0),))
    got = read_plan(consumer, plan, ALL, events_decoder(Config()), CFG)  # type: ignore[arg-type]
    assert (got.counts[0].scanned, got.counts[0].undecodable) == (3, 1)


def test_a_silent_broker_ends_the_run_with_an_error() -> None:
    consumer = ScriptedConsumer({0: 3})
    consumer.assign = lambda tps: None  # type: ignore[method-assign]
    plan = Plan("t", 1, 0, (PartitionRange(0, 0, 3, 0),))
    ticks = iter(range(0, 1000))
    with pytest.raises(ReplayError, match="partitions not finished: \\[0\\]"):
        read_plan(consumer, plan, ALL, events_decoder(Config()),  # type: ignore[arg-type]
                  CFG, clock=lambda: float(next(ticks)))


def test_no_consume_asks_for_more_records_than_the_ranges_still_hold() -> None:
    # librdkafka's consume(n, timeout) returns early only once it has n messages: asking for
    # more than is left makes the last call of every run wait out the timeout.
    half = len(VALUES) // 2
    consumer = ScriptedConsumer({0: half, 1: half})
    asked: list[int] = []
    serve = consumer.consume

    def consume(n: int, timeout: float) -> list[Msg]:
        asked.append(n)
        return serve(n, timeout)

    consumer.consume = consume  # type: ignore[method-assign]
    plan = Plan("t", 2, 0, (PartitionRange(0, 10, 50, 0), PartitionRange(1, 0, 3, 0)))
    got = read_plan(consumer, plan, ALL, events_decoder(Config()), CFG)  # type: ignore[arg-type]
    assert got.complete and sum(asked) == 40 + 3
    assert max(asked) == CFG.batch_size
