"""Set-up for the ``replay`` scenario: the events topic (filled by
:func:`bench.alert_setup.fill_checked`, the data every other bench uses), the config file, the
CLI as a subprocess timed from outside, and the targeted account/region/hour picked from the
data the full replay wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka.admin import AdminClient, NewTopic

from bench.alert_setup import PARTITIONS
from bench.common import BenchError
from pipeline.events.partition import partition_for_account

RUN_DIR = Path("var") / "bench-replay"
REPLAY_TIMEOUT_S = 900.0
HOUR_MS = 3_600_000


def create_topic(bootstrap: str, topic: str, timeout_s: float = 30) -> None:
    """The events topic with PARTITIONS partitions; waits until each has a leader."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    for fut in admin.create_topics([NewTopic(topic, PARTITIONS, -1)],
                                   operation_timeout=timeout_s).values():
        fut.result(timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is not None and len(meta.partitions) == PARTITIONS and all(
                p.leader >= 0 for p in meta.partitions.values()):
            return
        time.sleep(0.2)
    raise BenchError(f"{topic} has no leader everywhere after {timeout_s}s")


def write_config(path: Path, bootstrap: str, topic: str) -> None:
    """The replay's TOML config: the bench cluster, this events topic, JSON logs at warning
    (stderr then holds the JSON summary as its last line)."""
    lines = ["[kafka]", f'bootstrap = "{bootstrap}"', "", "[topics]", f'events = "{topic}"',
             "", "[log]", 'level = "warning"', 'format = "json"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")


@dataclass(slots=True)
class Run:
    """One ``trailpipe replay`` seen from outside: wall seconds (spawn to exit), peak RSS and
    CPU (user + system, its threads included) from wait4, and its stderr summary."""

    seconds: float
    peak_rss_mb: float
    cpu_s: float
    summary: dict[str, Any]

    @property
    def scanned(self) -> int:
        return int(self.summary.get("scanned", 0))

    @property
    def written(self) -> int:
        return int(self.summary.get("written", 0))

    @property
    def partitions_read(self) -> int:
        return sum(1 for c in self.summary.get("partitions", {}).values() if c["scanned"])


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def replay(config: Path, log_dir: Path, name: str, window_ms: tuple[int, int],
           *extra: str, dry_run: bool = False, env: dict[str, str] | None = None) -> Run:
    """Run ``trailpipe replay --from --to --out NAME.jsonl --config`` (plus ``extra``) as a
    user does; BenchError unless it exits 0 with a JSON summary on stderr (``dry_run``: with
    ``--dry-run``, which prints the plan on stdout and no summary). ``env``: extra
    environment (config overrides such as ``TRAILPIPE_STORAGE__LAKE``)."""
    trailpipe = Path(sys.executable).parent / "trailpipe"
    argv = [str(trailpipe), "replay", "--from", iso(window_ms[0]), "--to", iso(window_ms[1]),
            "--out", str(log_dir / f"{name}.jsonl"), "--config", str(config), *extra,
            *(["--dry-run"] if dry_run else [])]
    err_path = log_dir / f"{name}.log"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TRAILPIPE_")},
           **(env or {})}
    with open(err_path, "wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env=env, cwd=log_dir)
        # wait4: the child's own peak RSS and CPU (RUSAGE_CHILDREN would mix in every child).
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    summary = last_json(err_path.read_text(errors="replace"))
    if proc.returncode != 0 or ("scanned" not in summary and not dry_run):
        raise BenchError(f"{name}: trailpipe replay exited {proc.returncode}; see {err_path}")
    return Run(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, summary)


def last_json(text: str) -> dict[str, Any]:
    """The last line of ``text`` that is a JSON object with a ``scanned`` count."""
    for line in reversed(text.strip().splitlines()):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict) and "scanned" in doc:
            return doc
    return {}


@dataclass(frozen=True, slots=True)
class Target:
    """The targeted replay's account, region and hour, and what the data holds there."""

    account: str
    region: str
    hour_ms: int
    partition: int
    hour_records: int  # every record of that hour
    hour_accounts: int  # distinct accounts in that hour
    key_records: int  # records of account|region in that hour


def pick_target(records_jsonl: Path, partition_sizes: dict[int, int]) -> Target:
    """From a full replay's output: the hour with the most records, and in it the
    account|region (of a partition holding records of it) whose partition is the smallest,
    so the one-partition read scans as little as the data allows. BenchError when that hour
    holds fewer than two accounts (a targeted replay would then select nothing)."""
    keys: Counter[tuple[str | None, str | None, int]] = Counter()
    with records_jsonl.open("rb") as fh:
        for line in fh:
            rec = orjson.loads(line)
            identity = rec.get("userIdentity") or {}
            account = rec.get("recipientAccountId") or identity.get("accountId")
            hour = datetime.fromisoformat(rec["eventTime"].replace("Z", "+00:00"))
            hour_ms = int(hour.replace(minute=0, second=0, microsecond=0).timestamp() * 1000)
            keys[(account, rec.get("awsRegion"), hour_ms)] += 1
    hours: Counter[int] = Counter()
    for (_, _, hour_ms), n in keys.items():
        hours[hour_ms] += n
    hour_ms = hours.most_common(1)[0][0]
    in_hour = {(a, r): n for (a, r, h), n in keys.items()
               if h == hour_ms and a is not None and r is not None}
    accounts = {a for a, _ in in_hour}
    if len(accounts) < 2:
        raise BenchError(f"hour {iso(hour_ms)} holds {len(accounts)} account(s); need several")

    def cost(key: tuple[str, str]) -> tuple[int, int]:
        return partition_sizes[partition_for_account(*key, PARTITIONS)], -in_hour[key]

    account, region = min(in_hour, key=cost)
    return Target(account, region, hour_ms, partition_for_account(account, region, PARTITIONS),
                  hours[hour_ms], len(accounts), in_hour[(account, region)])


def hour_window(target: Target) -> tuple[int, int]:
    return target.hour_ms, target.hour_ms + HOUR_MS
