"""Apache Kafka's own ConsumerPerformance and ProducerPerformance (Java client) as reference
points.

ConsumerPerformance reports ``fetch.nMsg.sec`` / ``fetch.time.ms``: throughput after the group
join, which is what the Python measurements time too (first record to last).
ProducerPerformance's final line gives records/sec and MB/sec (MiB) from its first send to the
last acknowledgement. Any failure becomes an error string instead of a number: the reference is
optional, the Python numbers are not.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.dev import ensure_kafka_libs
from pipeline.dev.kafka_config import java_bin

_MAIN = "org.apache.kafka.tools.ConsumerPerformance"
_PRODUCER_MAIN = "org.apache.kafka.tools.ProducerPerformance"
# The final summary line (the progress lines have no percentiles):
# "500000 records sent, 70972.32 records/sec (58.89 MB/sec), 366.20 ms avg latency, ... 50th, ..."
_PRODUCER_FINAL = re.compile(
    r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\).* 50th", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class JavaPerfResult:
    records_per_s: float | None
    elapsed_s: float | None
    error: str | None = None
    mb_per_s: float | None = None


def parse_output(stdout: str) -> dict[str, str]:
    """The last CSV row of ConsumerPerformance keyed by its header (``fetch.nMsg.sec``, ...)."""
    lines = [ln.strip() for ln in stdout.splitlines() if ln.count(",") >= 5]
    header_at = next((i for i, ln in enumerate(lines) if ln.startswith("start.time")), None)
    if header_at is None or header_at + 1 >= len(lines):
        raise ValueError("no stats row in ConsumerPerformance output")
    names = [c.strip() for c in lines[header_at].split(",")]
    values = [c.strip() for c in lines[-1].split(",")]
    if len(names) != len(values):
        raise ValueError(f"stats row has {len(values)} columns, header {len(names)}")
    return dict(zip(names, values, strict=True))


def _argv(repo_root: Path, bootstrap: str, topic: str, group: str, records: int) -> list[str]:
    libs, _ = ensure_kafka_libs(repo_root)
    return [java_bin(), "-Xmx512m", "-XX:+UseG1GC", "-cp", f"{libs.resolve()}/*", _MAIN,
            "--bootstrap-server", bootstrap, "--topic", topic, "--group", group,
            "--num-records", str(records), "--timeout", "30000"]


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])[:500]


def consumer_perf(repo_root: Path, bootstrap: str, topic: str, group: str, records: int,
                  timeout_s: float = 120) -> JavaPerfResult:
    """Drain ``topic`` with ConsumerPerformance in group ``group``; never raises."""
    try:
        res = subprocess.run(_argv(repo_root, bootstrap, topic, group, records),
                             capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return JavaPerfResult(None, None, f"{type(exc).__name__}: {exc}")
    if res.returncode != 0:
        return JavaPerfResult(None, None, f"exit {res.returncode}: {_tail(res.stderr)}")
    try:
        row = parse_output(res.stdout)
        consumed = int(row["data.consumed.in.nMsg"])
        rate, fetch_ms = float(row["fetch.nMsg.sec"]), float(row["fetch.time.ms"])
    except (KeyError, ValueError) as exc:
        return JavaPerfResult(None, None, f"unparsable output ({exc}): {_tail(res.stdout)}")
    if consumed != records:
        return JavaPerfResult(None, None, f"consumed {consumed} of {records} records")
    return JavaPerfResult(rate, fetch_ms / 1000)


def parse_producer_output(stdout: str) -> tuple[int, float, float]:
    """``(records, records_per_s, mib_per_s)`` from ProducerPerformance's final line."""
    finals = _PRODUCER_FINAL.findall(stdout)
    if not finals:
        raise ValueError("no final summary line in ProducerPerformance output")
    records, rate, mb = finals[-1]
    return int(records), float(rate), float(mb)


def producer_perf(repo_root: Path, bootstrap: str, topic: str, records: int, record_bytes: int,
                  props: Mapping[str, str], timeout_s: float = 180) -> JavaPerfResult:
    """Send ``records`` unkeyed values of ``record_bytes`` random letters to ``topic`` as fast
    as possible with producer settings ``props``; never raises."""
    try:
        libs, _ = ensure_kafka_libs(repo_root)
        argv = [java_bin(), "-Xmx512m", "-XX:+UseG1GC", "-cp", f"{libs.resolve()}/*",
                _PRODUCER_MAIN, "--bootstrap-server", bootstrap, "--topic", topic,
                "--num-records", str(records), "--record-size", str(record_bytes),
                "--throughput", "-1", "--command-property",
                *(f"{k}={v}" for k, v in props.items())]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                             check=False)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return JavaPerfResult(None, None, f"{type(exc).__name__}: {exc}")
    if res.returncode != 0:
        return JavaPerfResult(None, None, f"exit {res.returncode}: {_tail(res.stderr)}")
    try:
        sent, rate, mb = parse_producer_output(res.stdout)
    except ValueError as exc:
        return JavaPerfResult(None, None, f"unparsable output ({exc}): {_tail(res.stdout)}")
    if sent != records:
        return JavaPerfResult(None, None, f"sent {sent} of {records} records")
    return JavaPerfResult(rate, records / rate if rate > 0 else None, mb_per_s=mb)
