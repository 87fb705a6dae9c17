"""Listing-scale pruning of ``lake query`` (issue 11, "Scale"): on a synthetic file lake of
≥ 100,000 small objects, a query filtered on one account, region and day lists and opens only
that day's objects; the same query without pruning lists every object, as ``lake query`` did.

The lake has the archiver's layout (:func:`pipeline.lake.layout.object_key`) and the lake's
schema; every object is a hard link to a tiny Parquet file of one row (one file per account:
file systems cap the links to one inode), so building it costs directory entries, not bytes.
A built lake is reused by the next run in the same directory.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import BenchError
from pipeline.lake.columns import LAKE_SCHEMA
from pipeline.lake.layout import HOUR_MS, object_key
from pipeline.lake.query import QueryResult, query

ACCOUNTS, REGIONS, DAYS, HOURS = 50, 4, 25, 20
REGION_NAMES = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
FIRST_DAY = datetime(2024, 1, 1, tzinfo=UTC)
TOPIC = "audit.events.v1"


def account_id(i: int) -> str:
    return f"{100000000000 + i:012d}"


def day_ms(day: int) -> int:
    return int((FIRST_DAY + timedelta(days=day)).timestamp() * 1000)


def build_lake(root: Path) -> int:
    """Write the synthetic lake under ``root`` (skipped when a previous run finished it);
    returns the number of objects."""
    total = ACCOUNTS * REGIONS * DAYS * HOURS
    done = root / f".built-{total}"
    if done.exists():
        return total
    root.mkdir(parents=True, exist_ok=True)
    row = pa.Table.from_pylist([{"eventid": "bench", "eventname": "GetObject"}],
                               schema=LAKE_SCHEMA)
    for a in range(ACCOUNTS):
        template = root / f"template-{a}.parquet"
        pq.write_table(row, template)
        for region in REGION_NAMES[:REGIONS]:
            for d in range(DAYS):
                for h in range(HOURS):
                    key = object_key(account_id(a), region, day_ms(d) + h * HOUR_MS, TOPIC,
                                     0, a)
                    path = root / key
                    path.parent.mkdir(parents=True, exist_ok=True)
                    if not path.exists():
                        os.link(template, path)
    done.touch()
    return total


def timed(url: str, sql: str, prune: bool) -> tuple[QueryResult, float]:
    start = time.perf_counter()
    result = query(url, sql, prune=prune)
    return result, time.perf_counter() - start


def measure_listing(work_dir: Path) -> dict[str, Any]:
    """Build (or reuse) the lake under ``work_dir/lake`` and time one ``lake query`` filtered
    on one account, region and day, pruned and not; the counts are the listing's own
    (:class:`pipeline.lake.listing.Listing`). Raises BenchError when the two disagree."""
    root = work_dir / "lake"
    start = time.perf_counter()
    total = build_lake(root)
    build_seconds = time.perf_counter() - start
    day = (FIRST_DAY + timedelta(days=DAYS // 2)).strftime("%Y-%m-%d")
    sql = (f"SELECT count(*) AS n FROM cloudtrail WHERE account = '{account_id(ACCOUNTS // 2)}'"
           f" AND region = '{REGION_NAMES[1]}' AND date = '{day}'")
    pruned, pruned_s = timed(f"file://{root}", sql, prune=True)
    whole, whole_s = timed(f"file://{root}", sql, prune=False)
    counts = [r.table.column("n")[0].as_py() for r in (pruned, whole)]
    if counts != [HOURS, HOURS]:
        raise BenchError(f"expected {HOURS} rows pruned and whole, got {counts}")
    return {
        "objects_total": total,
        "build_seconds": round(build_seconds, 2),
        "pruned_objects_listed": pruned.listing.listed,
        "pruned_listing_calls": pruned.listing.calls,
        "pruned_objects_opened": len(pruned.listing.files),
        "pruned_seconds": round(pruned_s, 4),
        "whole_objects_listed": whole.listing.listed,
        "whole_listing_calls": whole.listing.calls,
        "whole_objects_in_dataset": len(whole.listing.files),
        "whole_seconds": round(whole_s, 3),
        "listed_ratio": round(pruned.listing.listed / total, 6),
        "speedup": round(whole_s / pruned_s, 1),
    }


if __name__ == "__main__":
    import json
    import sys
    import tempfile

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="listing-"))
    print(json.dumps(measure_listing(out), indent=2))
