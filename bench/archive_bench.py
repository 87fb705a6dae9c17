"""Scenario ``archive``: ``trailpipe consume archiver`` against a Quix Streams S3 Parquet sink.

* **fill**: ``max(--records, 500,000)`` synthetic CloudTrail records (the seeded
  :class:`~producers.generator.Generator`: unique eventIDs/requestIDs, several accounts and
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

import gc
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from rich.markup import escape

from bench.common import BenchContext, BenchError, Scenario
from bench.fill import create_topic, delete_bench_leftovers
from bench.results import ScenarioResult
from pipeline.config import GeneratorConfig, ProducerConfig
from pipeline.dev import procs
from pipeline.dev import s3 as dev_s3
from pipeline.dev.model import DevClusterError
from pipeline.events.schemas import default_registry
from pipeline.kafka import producer_config
from producers.files import RawRecord
from producers.generator_source import make_generator
from producers.publisher import DeliveryFailed, Publisher

MIN_EVENTS = 500_000
PARTITIONS = 6
ACCOUNTS, REGIONS = 5, 3  # 15 account/region keys over 6 partitions
EVENT_TIME_RATE = 200.0  # events per second of event time (the generator's default pace)
START_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z: fixed, so every run has the same data
POLL_EVERY_RECORDS = 1_000
GZIP_LEVEL = 6
FLUSH_INTERVAL_S = 5.0  # Quix's default commit_interval; the archiver's max_age_ms likewise
PARQUET_COMPRESSION = "zstd"  # the archiver's; Quix's ParquetFormat is told the same
QUIX_VERSION = "3.28.1"
QUIX_REQUIREMENT = f"quixstreams[s3,parquet,avro]=={QUIX_VERSION}"
QUIX_VENV = Path("var") / "bench-venvs" / "quix"
RUN_DIR = Path("var") / "bench-archive"
S3_STATE_DIR = Path("var") / "bench-s3"
WATCH_EVERY_S = 0.1
ARCHIVER_TIMEOUT_S = 180.0
QUIX_TIMEOUT_S = 200.0
STOP_GRACE_S = 30.0
MIB = 1024 * 1024
_AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}


# ---------------------------------------------------------------------------------- quix venv

def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_quix_venv(repo_root: Path, say: Callable[[str], None]) -> Path:
    """The Quix virtualenv's python, (re)created when missing or not at the pinned version."""
    venv = repo_root / QUIX_VENV
    python = _venv_python(venv)
    stamp = venv / ".trailpipe-bench-requirement"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == QUIX_REQUIREMENT:
        return python
    say(escape(f"  creating {QUIX_VENV} with {QUIX_REQUIREMENT} (first run only)"))
    shutil.rmtree(venv, ignore_errors=True)
    for argv in ([sys.executable, "-m", "venv", str(venv)],
                 [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  QUIX_REQUIREMENT]):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(argv[:4])} failed: {done.stderr.strip()[-2000:]}")
    stamp.write_text(QUIX_REQUIREMENT + "\n")
    return python


def quix_packages(python: Path) -> str:
    """The versions the Quix side ran with (pip resolves all but quixstreams)."""
    code = ("from importlib.metadata import version as v; print(', '.join(f'{p} {v(p)}' for p in "
            "('quixstreams', 'confluent-kafka', 'fastavro', 'pyarrow', 'boto3')))")
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60,
                          check=False)
    return done.stdout.strip() or f"quixstreams {QUIX_VERSION}"


# ---------------------------------------------------------------------------------- S3 server

@contextmanager
def s3_server(repo_root: Path) -> Iterator[tuple[str, int]]:
    """A moto S3 server of the scenario's own (stopped at the end); yields its endpoint and
    pid."""
    state_dir = repo_root / S3_STATE_DIR
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        rec = dev_s3.start(state_dir, time.monotonic() + 60)
    except DevClusterError as exc:
        raise BenchError(str(exc)) from exc
    try:
        yield dev_s3.endpoint(rec.port), rec.proc.pid
    finally:
        procs.stop(rec.proc, grace_s=5.0)


def _s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name="us-east-1")


@dataclass(frozen=True, slots=True)
class Objects:
    count: int
    bytes: int
    rows: int


def parquet_objects(client: Any, bucket: str, prefix: str) -> Objects:
    """Count, size and rows (from the footers) of the ``.parquet`` objects under ``prefix``."""
    count = size = rows = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith(".parquet"):
                continue
            body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            count, size = count + 1, size + int(obj["Size"])
            rows += pq.read_metadata(io.BytesIO(body)).num_rows
    return Objects(count, size, rows)


# ---------------------------------------------------------------------------------- fill

class CloudTrailGzip:
    """The records as CloudTrail log files: one gzip ``{"Records":[...]}`` per account,
    region and event-time hour; only the compressed sizes are kept."""

    def __init__(self) -> None:
        self._files: dict[tuple[str, str, str], Any] = {}
        self._bytes = 0

    def add(self, record: Mapping[str, Any], raw: bytes) -> None:
        identity = record.get("userIdentity") or {}
        key = (str(record.get("recipientAccountId") or identity.get("accountId")),
               str(record.get("awsRegion")), str(record.get("eventTime", ""))[:13])
        z = self._files.get(key)
        if z is None:
            z = self._files[key] = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + 15)
            self._bytes += len(z.compress(b'{"Records":[')) + len(z.compress(raw))
        else:
            self._bytes += len(z.compress(b",")) + len(z.compress(raw))

    def finish(self) -> tuple[int, int]:
        """(files, total gzip bytes)."""
        for z in self._files.values():
            self._bytes += len(z.compress(b"]}")) + len(z.flush())
        files, self._files = len(self._files), {}
        return files, self._bytes


@dataclass(frozen=True, slots=True)
class Fill:
    events: int
    elapsed_s: float
    json_bytes: int
    avro_bytes: int
    gzip_files: int
    gzip_bytes: int


def fill(bootstrap: str, topic: str, dlq: str, events: int) -> Fill:
    """Publish ``events`` generated records as ``trailpipe produce`` would; gzip them aside."""
    gen = make_generator(GeneratorConfig(accounts=ACCOUNTS, regions=REGIONS,
                                         rate_per_s=EVENT_TIME_RATE), START_MS)
    p = ProducerConfig()
    conf = producer_config(
        {"bootstrap.servers": bootstrap, "client.id": "bench-archive-fill", "log_level": 3},
        {"compression.type": p.compression, "linger.ms": str(p.linger_ms),
         "batch.size": str(p.batch_bytes), "delivery.timeout.ms": str(p.delivery_timeout_ms)})
    publisher = Publisher(conf, events_topic=topic, dlq_topic=dlq, source="bench",
                          producer_id="bench-archive")
    if not publisher.healthy(10):
        raise BenchError(f"topic {topic} not visible to the producer")
    gz = CloudTrailGzip()
    start = time.perf_counter()
    for i, record in enumerate(gen.records(events)):
        raw = json.dumps(record, separators=(",", ":")).encode()
        gz.add(record, raw)
        publisher.publish(RawRecord(f"generator#{i}", raw, value=record))
        if i % POLL_EVERY_RECORDS == 0:
            publisher.poll()
    try:
        stats = publisher.flush(120)
    except DeliveryFailed as exc:
        raise BenchError(f"fill failed: {exc}") from exc
    elapsed = time.perf_counter() - start
    # The Publisher sits in a reference cycle (its delivery callbacks): free its producer now,
    # not at some later garbage collection in the middle of a drain.
    del publisher
    gc.collect()
    if stats.produced != events or stats.dead_lettered:
        raise BenchError(f"fill produced {stats.produced}, dead-lettered "
                         f"{stats.dead_lettered} of {events}")
    files, gz_bytes = gz.finish()
    return Fill(events, elapsed, stats.bytes_in, stats.bytes_out, files, gz_bytes)


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-archive-watermarks"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(PARTITIONS)}
    finally:
        consumer.close()


# ---------------------------------------------------------------------------------- drains

def _proc_status(pid: int) -> tuple[float | None, float | None]:
    """(peak RSS MiB from VmHWM, CPU seconds user+system) of a live process."""
    rss = cpu = None
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
    with suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


@dataclass(slots=True)
class Drain:
    """One subprocess draining the topic, as seen from outside."""

    events: int
    committed: int
    startup_s: float | None  # spawn -> partitions assigned
    elapsed_s: float  # spawn -> every offset committed (or the timeout)
    peak_rss_mb: float | None
    cpu_s: float | None
    helper_cpu_s: float | None  # the S3 server's CPU during the drain
    stdout: str
    complete: bool
    notes: list[str] = field(default_factory=list)

    @property
    def drain_s(self) -> float:
        return self.elapsed_s - (self.startup_s or 0.0)

    @property
    def events_per_s(self) -> float:
        return self.committed / self.drain_s if self.drain_s > 0 else 0.0

    @property
    def events_per_s_incl_startup(self) -> float:
        return self.committed / self.elapsed_s if self.elapsed_s > 0 else 0.0


class GroupWatch:
    """Polls a consumer group: when it first has partitions assigned, how far it committed.

    Committed offsets are read by a Consumer of the group that never subscribes (so never
    joins): AdminClient.list_consumer_group_offsets crashes librdkafka 2.16 (a NULL consumer
    group handle in rd_kafka_handle_OffsetFetch) when the coordinator of a fresh cluster is
    still loading."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
        self.offsets = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                 "enable.auto.commit": False, "log_level": 3})
        self.group = group
        self.partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    def assigned(self) -> bool:
        try:
            desc = self.admin.describe_consumer_groups([self.group])[self.group].result(
                timeout=5)
        except KafkaException:
            return False
        return any(m.assignment and m.assignment.topic_partitions for m in desc.members)

    def committed(self) -> dict[int, int]:
        try:
            res = self.offsets.committed(self.partitions, timeout=5)
        except KafkaException:
            return {}
        return {tp.partition: tp.offset for tp in res if tp.error is None and tp.offset >= 0}

    def close(self) -> None:
        self.offsets.close()


def drain(argv: list[str], env: Mapping[str, str], log_dir: Path, name: str, *,
          watch: GroupWatch, ends: dict[int, int], timeout_s: float, helper_pid: int,
          partial_ok: bool) -> Drain:
    """Spawn ``argv``; wait until ``watch``'s group committed ``ends``; read RSS/CPU; SIGTERM."""
    events = sum(ends.values())
    out_path, err_path = log_dir / f"{name}.stdout", log_dir / f"{name}.log"
    _, helper_cpu0 = _proc_status(helper_pid)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.monotonic()
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 env={**os.environ, **env}, cwd=log_dir)
    startup: float | None = None
    committed: dict[int, int] = {}
    complete = False
    try:
        while True:
            now = time.monotonic()
            if child.poll() is not None:
                raise BenchError(f"{name} exited with {child.returncode} before draining "
                                 f"({sum(committed.values())}/{events} committed); "
                                 f"{err_path}:\n{procs.tail(err_path, 15)}")
            if startup is None and watch.assigned():
                startup = time.monotonic() - t0
            committed = watch.committed()
            if all(committed.get(p, 0) >= end for p, end in ends.items()):
                complete, elapsed = True, time.monotonic() - t0
                break
            if now - t0 > timeout_s:
                elapsed = now - t0
                if not partial_ok:
                    raise BenchError(f"{name} committed {sum(committed.values())}/{events} "
                                     f"in {timeout_s:.0f}s; {err_path}:\n"
                                     f"{procs.tail(err_path, 15)}")
                break
            time.sleep(WATCH_EVERY_S)
        rss, cpu = _proc_status(child.pid)
        _, helper_cpu1 = _proc_status(helper_pid)
    finally:
        watch.close()
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
    helper = None if helper_cpu0 is None or helper_cpu1 is None else helper_cpu1 - helper_cpu0
    done = min(sum(committed.get(p, 0) for p in ends), events)
    result = Drain(events, done, startup, elapsed, rss, cpu, helper,
                   out_path.read_text(errors="replace"), complete)
    if not complete:
        result.notes.append(f"timed out after {timeout_s:.0f}s with {done:,}/{events:,} "
                            "committed; rate over what was committed")
    return result


def archiver_env(topics: Mapping[str, str]) -> dict[str, str]:
    return {**_AWS_ENV,
            "TRAILPIPE_ARCHIVER__TOPIC": topics["events"],
            "TRAILPIPE_ARCHIVER__DELIVERIES_TOPIC": topics["deliveries"],
            "TRAILPIPE_ARCHIVER__HEALTH_TOPIC": topics["health"],
            "TRAILPIPE_ARCHIVER__MAX_AGE_MS": str(int(FLUSH_INTERVAL_S * 1000)),
            "TRAILPIPE_RUNNER__DLQ_TOPIC": topics["dlq"],
            "TRAILPIPE_LOG__LEVEL": "warning", "TRAILPIPE_LOG__FORMAT": "json"}


def _summary(stdout: str) -> dict[str, Any]:
    """The archiver's JSON summary (its last stdout line)."""
    for line in reversed(stdout.strip().splitlines()):
        with suppress(json.JSONDecodeError):
            doc = json.loads(line)
            if isinstance(doc, dict):
                return doc
    return {}


# ---------------------------------------------------------------------------------- scenario

def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


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
                 {**_AWS_ENV}, log_dir, "quix",
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
