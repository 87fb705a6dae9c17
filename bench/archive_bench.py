"""Scenario ``archive``: ``trailpipe consume archiver`` against a Quix Streams S3 Parquet sink.

* **fill**: ``max(--records, 500,000)`` synthetic CloudTrail records (the seeded
  :class:`~producers.generator.engine.Generator`: unique eventIDs/requestIDs, several accounts and
  regions, event time advancing at ``EVENT_TIME_RATE`` per second, the attack scenarios of
  ``make run``) are published through a :class:`~producers.publisher.Publisher` configured as
  ``trailpipe produce`` configures it, to a fresh 6-partition topic. While they are produced the
  same records are written as **CloudTrail log files** would be (``{"Records":[...]}``, compact
  JSON, gzip level 6), one file per account/region/event-time hour (the lake's Hive partition),
  to give ``gzip_json_bytes``. Real records cycled would flatter Parquet (its dictionaries see
  the repeats, gzip's 32 KiB window does not), hence generated ones.
* **archiver**: ``trailpipe consume archiver --lake s3://BUCKET/lake --s3-endpoint URL`` as a
  subprocess against a moto S3 server started for the scenario; the topic, notice/health/DLQ
  topics and ``max_age_ms`` come in as ``TRAILPIPE_*`` variables. The daemon has no idle exit,
  so the bench watches the group's committed offsets reach the end offsets,
  reads the process's peak RSS (``VmHWM``) and CPU time from ``/proc``, then SIGTERMs it and
  checks that its summary and the Parquet footers both count exactly the events produced.
* **quix**: :mod:`bench.quix_app` (``Application`` → ``S3FileSink`` + ``ParquetFormat``, zstd,
  Quix Streams pinned at ``QUIX_REQUIREMENT``) in its own virtualenv ``var/bench-venvs/quix``
  (created by the bench with ``python -m venv`` + pip on first use), draining the same topic
  into the same S3 endpoint with its own group, measured the same way.

Both sides get the same bound on how long a record may wait in memory before its object is
written and its offset committed: the archiver's ``max_age_ms`` = Quix's ``commit_interval``
(``FLUSH_INTERVAL_S``). The drain rate ``events_per_s`` is timed from the moment the group has
its partitions assigned (seen through ``describe_consumer_groups``) to the moment every offset
is committed, i.e. objects written, as the ``runner`` scenario excludes the group join;
``*_incl_startup`` rates count from the process spawn (interpreter, imports, join).
``peak_rss_mb`` is the high-water mark of the whole process (MiB).
"""
from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from bench.archive_drain import GroupWatch, _r, _summary, archiver_env, drain, end_offsets
from bench.archive_setup import (
    ACCOUNTS,
    ARCHIVER_TIMEOUT_S,
    AWS_ENV,
    FLUSH_INTERVAL_S,
    MIB,
    MIN_EVENTS,
    PARQUET_COMPRESSION,
    PARTITIONS,
    QUIX_TIMEOUT_S,
    QUIX_VERSION,
    REGIONS,
    RUN_DIR,
    _s3_client,
    ensure_quix_venv,
    fill,
    parquet_objects,
    quix_packages,
    s3_server,
)
from bench.common import BenchContext, BenchError, Scenario
from bench.fill import create_topic, delete_bench_leftovers
from bench.results import ScenarioResult
from pipeline.events.schemas import default_registry


def _measure(ctx: BenchContext, sfx: str, topics: dict[str, str], groups: dict[str, str],
             endpoint: str, moto_pid: int) -> ScenarioResult:
    say = ctx.console.print
    events = max(ctx.records, MIN_EVENTS)
    log_dir = ctx.repo_root / RUN_DIR
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    quix_python = ensure_quix_venv(ctx.repo_root, say)
    bucket = f"bench-archive-{sfx}"
    s3 = _s3_client(endpoint)
    s3.create_bucket(Bucket=bucket)
    create_topic(ctx.bootstrap, topics["events"], PARTITIONS)
    for name in ("deliveries", "health", "dlq"):
        create_topic(ctx.bootstrap, topics[name], 1)

    say(f"[bold]archive[/]: generating and publishing {events:,} events")
    filled = fill(ctx.bootstrap, topics["events"], topics["dlq"], events)
    ends = end_offsets(ctx.bootstrap, topics["events"])
    if sum(ends.values()) != events:
        raise BenchError(f"topic holds {sum(ends.values())} records, expected {events}")
    say(f"  filled in {filled.elapsed_s:.1f}s ({events / filled.elapsed_s:,.0f}/s); "
        "draining with the archiver")

    trailpipe = Path(sys.executable).parent / "trailpipe"
    arch = drain([str(trailpipe), "consume", "archiver", "--bootstrap", ctx.bootstrap,
                  "--lake", f"s3://{bucket}/lake", "--s3-endpoint", endpoint,
                  "--group", groups["archiver"]],
                 archiver_env(topics), log_dir, "archiver",
                 watch=GroupWatch(ctx.bootstrap, groups["archiver"], topics["events"]),
                 ends=ends, timeout_s=ARCHIVER_TIMEOUT_S, helper_pid=moto_pid,
                 partial_ok=False)
    summary = _summary(arch.stdout)
    lake = parquet_objects(s3, bucket, "lake/events/")
    if lake.rows != events or summary.get("rows_written", events) != events:
        raise BenchError(f"the lake holds {lake.rows} rows, expected {events} "
                         f"(archiver summary: {summary})")
    say(f"  archiver {arch.events_per_s:,.0f} events/s ({arch.drain_s:.1f}s + "
        f"{arch.startup_s or 0:.1f}s startup), {lake.count} objects, {lake.bytes / MIB:.1f} MiB; "
        f"draining with Quix Streams {QUIX_VERSION}")

    entry = default_registry().get()
    quix = drain([str(quix_python), str(ctx.repo_root / "bench" / "quix_app.py"),
                  ctx.bootstrap, topics["events"], groups["quix"], str(entry.path),
                  entry.fingerprint_hex, endpoint, bucket, "quix", PARQUET_COMPRESSION,
                  str(FLUSH_INTERVAL_S), str(log_dir / "quix-state")],
                 {**AWS_ENV}, log_dir, "quix",
                 watch=GroupWatch(ctx.bootstrap, groups["quix"], topics["events"]),
                 ends=ends, timeout_s=QUIX_TIMEOUT_S, helper_pid=moto_pid, partial_ok=True)
    quix_objects = parquet_objects(s3, bucket, "quix/")
    if quix.complete and quix_objects.rows < events:
        raise BenchError(f"Quix committed everything but wrote {quix_objects.rows} rows")
    say(f"  Quix {quix.events_per_s:,.0f} events/s ({quix.drain_s:.1f}s + "
        f"{quix.startup_s or 0:.1f}s startup), {quix_objects.count} objects, "
        f"{quix_objects.bytes / MIB:.1f} MiB")

    return {
        "events": events,
        "partitions": PARTITIONS,
        "accounts": ACCOUNTS,
        "regions": REGIONS,
        "fill_events_per_s": _r(events / filled.elapsed_s),
        "json_bytes_per_event": _r(filled.json_bytes / events),
        "avro_bytes_per_event": _r(filled.avro_bytes / events),
        "flush_interval_s": FLUSH_INTERVAL_S,
        "s3_endpoint": "moto server (local)",
        # archiver
        "events_per_s": _r(arch.events_per_s),
        "events_per_s_incl_startup": _r(arch.events_per_s_incl_startup),
        "drain_s": _r(arch.drain_s, 3),
        "startup_s": _r(arch.startup_s, 3),
        "peak_rss_mb": _r(arch.peak_rss_mb),
        "cpu_s": _r(arch.cpu_s, 2),
        "cpu_us_per_event": _r(arch.cpu_s / events * 1e6 if arch.cpu_s else None),
        "s3_server_cpu_s": _r(arch.helper_cpu_s, 2),
        "objects": lake.count,
        "parquet_bytes": lake.bytes,
        "parquet_compression": PARQUET_COMPRESSION,
        "commits": summary.get("commits"),
        # the same records as CloudTrail log files
        "gzip_json_bytes": filled.gzip_bytes,
        "gzip_json_files": filled.gzip_files,
        "size_ratio_vs_gzip_json": round(lake.bytes / filled.gzip_bytes, 3),
        # Quix Streams
        "quix_version": QUIX_VERSION,
        "quix_packages": quix_packages(quix_python),
        "quix_destination": "S3FileSink(endpoint_url=<moto>), ParquetFormat(zstd)",
        "quix_events_per_s": _r(quix.events_per_s),
        "quix_events_per_s_incl_startup": _r(quix.events_per_s_incl_startup),
        "quix_drain_s": _r(quix.drain_s, 3),
        "quix_startup_s": _r(quix.startup_s, 3),
        "quix_committed": quix.committed,
        "quix_note": "; ".join(quix.notes) or None,
        "quix_peak_rss_mb": _r(quix.peak_rss_mb),
        "quix_cpu_s": _r(quix.cpu_s, 2),
        "quix_cpu_us_per_event": _r(quix.cpu_s / quix.committed * 1e6
                                    if quix.cpu_s and quix.committed else None),
        "quix_s3_server_cpu_s": _r(quix.helper_cpu_s, 2),
        "quix_objects": quix_objects.count,
        "quix_parquet_bytes": quix_objects.bytes,
        "ratio_vs_quix": (round(arch.events_per_s / quix.events_per_s, 3)
                          if quix.events_per_s else None),
    }


def run(ctx: BenchContext) -> ScenarioResult:
    """Measure on fresh topics and a fresh S3 server; topics, groups and server go afterwards."""
    sfx = uuid.uuid4().hex[:8]
    topics = {name: f"bench.archive.{name}.{sfx}"
              for name in ("events", "deliveries", "health", "dlq")}
    groups = {name: f"bench-archive-{name}-{sfx}" for name in ("archiver", "quix")}
    try:
        with s3_server(ctx.repo_root) as (endpoint, moto_pid):
            return _measure(ctx, sfx, topics, groups, endpoint, moto_pid)
    finally:
        delete_bench_leftovers(ctx.bootstrap, topics["events"], list(groups.values()))
        for name in ("deliveries", "health", "dlq"):
            delete_bench_leftovers(ctx.bootstrap, topics[name], [])


def _rate(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.0f} events/s"


def summary(r: ScenarioResult) -> str:
    return (f"archive: {r['events']:,} events | archiver {_rate(r['events_per_s'])} "
            f"({r['drain_s']}s, {r['peak_rss_mb']} MiB peak) | Quix Streams "
            f"{_rate(r['quix_events_per_s'])} = ratio {r['ratio_vs_quix']} | Parquet "
            f"{r['parquet_bytes']:,} B vs gzip JSON {r['gzip_json_bytes']:,} B = "
            f"{r['size_ratio_vs_gzip_json']}")


SCENARIO = Scenario(run=run, summary=summary,
                    description="archiver into S3 Parquet vs a Quix Streams S3 Parquet sink")

