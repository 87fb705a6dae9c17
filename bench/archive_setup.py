"""Set-up for the ``archive`` scenario: constants, the Quix virtualenv, the local S3
server, the fill of the topic (and the same records as CloudTrail gzip JSON)."""

from __future__ import annotations

import gc
import io
import json
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
from rich.markup import escape

from bench.common import BenchError
from pipeline.config import GeneratorConfig, ProducerConfig
from pipeline.dev import procs
from pipeline.dev import s3 as dev_s3
from pipeline.dev.model import DevClusterError
from pipeline.kafka import producer_config
from producers.files import RawRecord
from producers.generator.source import make_generator
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
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
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


