"""Helpers for tests of a lake the archiver wrote: digest its delivery notices with the digester
on the real Runner (in-process, its clock set past the newest delivery hour so every hour
closes without waiting), then check it with ``trailpipe lake validate`` as a user would."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kit import read_all
from pydantic import SecretStr

from pipeline.config import Config, RunnerConfig, TopicsConfig
from pipeline.daemon import Context, build_registered
from pipeline.intake import RunStats
from pipeline.lake.digest.config import DigestConfig
from pipeline.lake.digest.model import iso_ms
from pipeline.lake.keys import generate_keypair
from pipeline.lake.layout import HOUR_MS, Delivery, hour_start
from pipeline.lake.store import ObjectStore, open_store

REPO = Path(__file__).resolve().parents[2]
GRACE_MS = 60_000
SUMMARY = re.compile(r"^(OK|FAILED): (\d+) failure\(s\), (\d+) note\(s\); (\d+) digest\(s\)"
                     r".*?, (\d+) object\(s\) verified, (\d+) object\(s\) under events/ scanned$",
                     re.MULTILINE)


@dataclass(frozen=True)
class Digested:
    notices: int  # notices on the topic (repeats included)
    keys: int  # distinct object keys they name
    digests: int  # digests written: one per delivery hour, first to newest
    to_ms: int  # the end of the newest delivery hour (validate's --to)


def run_digester(bootstrap: str, store: ObjectStore, topic: str, group: str, key: Path,
                 clock_ms: int, grace_ms: int = GRACE_MS) -> tuple[RunStats, int]:
    """The digester daemon (``trailpipe consume digester``'s build) in-process on the real
    Runner until idle, its clock fixed at ``clock_ms``; returns its stats and digests written."""
    cfg = Config(runner=RunnerConfig(commit_interval_ms=200, poll_timeout_ms=200),
                 topics=TopicsConfig(deliveries=topic),
                 digest=DigestConfig(group=group, close_grace_ms=grace_ms,
                                     startup_settle_ms=20_000, private_key=SecretStr(str(key))))
    daemon = build_registered("digester", Context(cfg, bootstrap, hooks={
        "store": store, "clock": lambda _ms: clock_ms}))
    stats = daemon.run(idle_exit_s=1.5)
    return stats, daemon.parts.summary()["digests_written"]


def digest_deliveries(bootstrap: str, lake_url: str, s3_endpoint: str | None, topic: str,
                      group: str, private_key: Path) -> Digested:
    """Run the digester over every notice on ``topic`` with the clock one hour + grace past
    the newest delivery hour; every delivery hour gets its digest."""
    notices = [Delivery.from_json(m.value()) for m in read_all(bootstrap, topic)]
    assert notices, f"no delivery notices on {topic}"
    first = hour_start(min(n.delivered_at_ms for n in notices))
    last = hour_start(max(n.delivered_at_ms for n in notices))
    stats, written = run_digester(bootstrap, open_store(lake_url, s3_endpoint=s3_endpoint), topic,
                                  group, private_key, last + HOUR_MS + GRACE_MS + 1)
    assert stats.dead_lettered == 0
    hours = (last - first) // HOUR_MS + 1
    assert written == hours, f"{written} digests for {hours} delivery hour(s)"
    return Digested(len(notices), len({n.key for n in notices}), written,
                    last + HOUR_MS)


def keypair(directory: Path) -> tuple[Path, Path]:
    private, public, _ = generate_keypair(directory / "digest.pem")
    return private, public


@dataclass(frozen=True)
class Validated:
    ok: bool
    failures: int
    notes: int
    digests: int
    objects_verified: int
    objects_scanned: int
    output: str


def validate_cli(lake_url: str, s3_endpoint: str | None, public_key: Path,
                 to_ms: int) -> Validated:
    """``trailpipe lake validate --to <to_ms>`` (from the start of the chain) as a process;
    asserts it exits 0 and prints an OK summary."""
    args = [str(REPO / ".venv" / "bin" / "trailpipe"), "lake", "validate", "--lake", lake_url,
            "--public-key", str(public_key), "--to", iso_ms(to_ms)]
    if s3_endpoint:
        args += ["--s3-endpoint", s3_endpoint]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=REPO)
    output = proc.stdout + proc.stderr
    m = SUMMARY.search(proc.stdout)
    assert proc.returncode == 0 and m is not None and m[1] == "OK", output[-5000:]
    return Validated(True, *(int(m[i]) for i in range(2, 7)), output)
