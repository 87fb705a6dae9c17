"""How small and how fast the archiver's Parquet objects are, per layout option.

Generates events with the seeded generator exactly as :mod:`bench.archive_setup` fills the
``archive`` scenario (same accounts, regions, pace and start time), sizes them as gzip-6
CloudTrail JSON files (one per account/region/hour, :class:`bench.archive_setup.CloudTrailGzip`),
cuts them as the archiver's flushes would (every ``flush`` events, per Kafka partition of the
event key) and builds the objects with :func:`consumers.archiver.objects.build_objects` under
each option. Prints, per option and flush size: lake bytes / gzip JSON bytes, object count and
the single-core CPU cost per row (sort + encode; lake_table conversion excluded).

Run: ``.venv/bin/python -m bench.parquet_tuning [--events 200000] [--flush 100000 ...]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pyarrow as pa

from bench.archive_setup import ACCOUNTS, EVENT_TIME_RATE, PARTITIONS, START_MS, CloudTrailGzip
from consumers.archiver.objects import build_objects, partition_tables
from consumers.archiver.parquet import _INTS, LAYOUT, OLD_LAYOUT, Layout
from pipeline.config import GeneratorConfig
from pipeline.events import IngestMeta, to_avro
from pipeline.events.partition import event_key, partition_for
from pipeline.lake.columns import _AVRO_TYPE, lake_table
from pipeline.lake.config import ArchiverConfig
from producers.generator.source import make_generator

REGIONS = 3
FILL_RATE = 15_000  # events/s the bench's fill publishes at: ingest and Kafka timestamps
TOPIC = "audit.events.v1"
REPEATS = 2  # CPU time: the best of this many runs (the machine may be shared)


def options() -> Iterator[tuple[str, Layout, ArchiverConfig]]:
    """(name, layout, config) of every variant measured: the old layout, then the default's
    choices added one by one, then the default with other zstd levels and row groups."""
    cfg = ArchiverConfig()
    old = OLD_LAYOUT
    yield "old: offset order, pyarrow defaults", old, cfg
    yield "sort src,name,time", replace(old, sort_by=(
        "eventsource", "eventname", "_event_time_ms")), cfg
    yield "sort arn,src,name,time", replace(old, sort_by=LAYOUT.sort_by), cfg
    steps = [("  + stats on filter columns", {"statistics": LAYOUT.statistics}),
             ("  + no Arrow schema", {"store_schema": False}),
             ("  + no dict on unique columns", {"dictionary": LAYOUT.dictionary}),
             ("  + delta ints, DLBA ids (=default)", {"encodings": LAYOUT.encodings})]
    layout = replace(old, sort_by=LAYOUT.sort_by)
    for name, change in steps:
        layout = replace(layout, **change)  # type: ignore[arg-type]
        yield name, layout, cfg
    assert layout == LAYOUT
    yield "default, BYTE_STREAM_SPLIT ints", replace(LAYOUT, encodings={
        **LAYOUT.encodings, **{c: "BYTE_STREAM_SPLIT" for c in _INTS}}), cfg
    yield "default, offset order", replace(LAYOUT, sort_by=()), cfg
    for level in (1, 2, 4, 6, 9):
        yield f"default, zstd {level}", LAYOUT, cfg.model_copy(update={"zstd_level": level})
    for rows in (16_384, 65_536):
        yield f"default, zstd 1, row group {rows}", LAYOUT, cfg.model_copy(
            update={"zstd_level": 1, "row_group_rows": rows})


def generate(events: int) -> tuple[list[dict[str, Any]], list[int], int]:
    """The datums, their Kafka partitions, and the gzip JSON size of the same records."""
    gen = make_generator(GeneratorConfig(accounts=ACCOUNTS, regions=REGIONS,
                                         rate_per_s=EVENT_TIME_RATE), START_MS)
    gz = CloudTrailGzip()
    datums, parts = [], []
    for i, record in enumerate(gen.records(events)):
        gz.add(record, json.dumps(record, separators=(",", ":")).encode())
        ingest = IngestMeta(START_MS + i * 1000 // FILL_RATE, "bench", "bench-archive",
                            f"generator#{i}")
        datums.append(to_avro(record, ingest=ingest))
        parts.append(partition_for(event_key(record), PARTITIONS))
    return datums, parts, gz.finish()[1]


def flush_chunks(datums: list[dict[str, Any]], parts: list[int], flush: int
                 ) -> list[tuple[int, pa.Table]]:
    """Per flush of ``flush`` events, the lake rows of each Kafka partition."""
    next_offset = [0] * PARTITIONS
    chunks = []
    for lo in range(0, len(datums), flush):
        part = parts[lo:lo + flush]
        offsets = []
        for p in part:
            offsets.append(next_offset[p])
            next_offset[p] += 1
        batch = pa.Table.from_struct_array(pa.array(datums[lo:lo + flush], type=_AVRO_TYPE))
        n = batch.num_rows
        stamps = [START_MS + (lo + i) * 1000 // FILL_RATE for i in range(n)]
        for name, values, typ in (("_partition", part, pa.int32()),
                                  ("_offset", offsets, pa.int64()),
                                  ("_timestamp_ms", stamps, pa.int64())):
            batch = batch.append_column(name, pa.array(values, typ))
        chunks += partition_tables(lake_table(batch))
    return chunks


def measure(chunks: list[tuple[int, pa.Table]], layout: Layout, cfg: ArchiverConfig
            ) -> tuple[int, int, float]:
    """(bytes, objects, CPU seconds) of building every chunk's objects."""
    best = float("inf")
    for _ in range(REPEATS):
        size = count = 0
        start = time.process_time()
        for partition, table in chunks:
            for obj in build_objects(table, topic=TOPIC, partition=partition, cfg=cfg,
                                     layout=layout):
                size += len(obj.data)
                count += 1
        best = min(best, time.process_time() - start)
    return size, count, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--flush", type=int, nargs="*", default=[100_000, 200_000])
    args = parser.parse_args()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    datums, parts, gzip_bytes = generate(args.events)
    print(f"{args.events} events, gzip-6 JSON {gzip_bytes} B")
    for flush in args.flush:
        chunks = flush_chunks(datums, parts, flush)
        rows = sum(t.num_rows for _, t in chunks)
        print(f"\nflush every {flush} events: {len(chunks)} partition chunks, "
              f"{rows // len(chunks)} rows each")
        for name, layout, cfg in options():
            size, count, cpu = measure(chunks, layout, cfg)
            print(f"  {name:34s} ratio {size / gzip_bytes:.3f}  objects {count:4d}  "
                  f"{size / rows:6.1f} B/row  {cpu / rows * 1e6:5.2f} µs/row")


if __name__ == "__main__":
    main()
