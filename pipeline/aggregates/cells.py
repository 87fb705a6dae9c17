"""Closed windows (partial counts) → ``Aggregate`` datums, and 1-minute Insights statistics.

The partial rows of a closed window hold counts per key and (principal, source IP); here they
are summed per key with the per-value lists, in Arrow, and turned into one datum per key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.aggregates.columns import DIMENSIONS
from pipeline.aggregates.windows import KEY_COLUMNS

INSIGHT_KEY = ("account", "region", "event_source", "event_name")
INSIGHT_GROUP = ("start", *INSIGHT_KEY, "outcome", "principal", "user_agent")
"""Group columns of the 1-minute Insights partials (write management calls only)."""


def _values(table: pa.Table, keys: list[str], column: str) -> pa.Table:
    """Per key: the list of values of ``column`` and their summed counts."""
    per_value = table.filter(pc.is_valid(table.column(column))).group_by(
        [*keys, column], use_threads=False).aggregate([("count", "sum")])
    return per_value.group_by(keys, use_threads=False).aggregate(
        [(column, "list"), ("count_sum", "list")]).rename_columns(
        [*keys, f"{column}_values", f"{column}_counts"])


def cell_rows(table: pa.Table) -> list[dict[str, Any]]:
    """One row per (start, key): ``count``, ``first_offset`` and the per-value lists."""
    keys = list(KEY_COLUMNS)
    base = table.group_by(keys, use_threads=False).aggregate(
        [("count", "sum"), ("first_offset", "min")]).rename_columns(
        [*keys, "count", "first_offset"])
    rows: list[dict[str, Any]] = base.sort_by([(k, "ascending") for k in keys]).to_pylist()
    # Joins cannot carry list columns: the lists are matched to their rows by key here.
    for column in ("principal", "source_ip"):
        lists = {tuple(r[k] for k in keys): r for r in _values(table, keys, column).to_pylist()}
        for row in rows:
            found = lists.get(tuple(row[k] for k in keys))
            row[f"{column}_values"] = found[f"{column}_values"] if found else []
            row[f"{column}_counts"] = found[f"{column}_counts"] if found else []
    return rows


def _listed(values: list[str] | None, counts: list[int] | None, max_values: int
            ) -> tuple[list[dict[str, Any]], int, bool]:
    pairs = sorted(zip(values or [], counts or [], strict=True), key=lambda p: (-p[1], p[0]))
    complete = len(pairs) <= max_values
    listed = [{"value": v, "count": c} for v, c in pairs] if complete else []
    return listed, len(pairs), complete


def aggregate_datum(row: dict[str, Any], *, size: str, size_ms: int, partition: int,
                    trigger_offset: int, correction: bool, watermark_ms: int, emitted_ms: int,
                    max_values: int) -> dict[str, Any]:
    """The ``Aggregate`` datum of one :func:`cell_rows` row."""
    principals, n_principals, p_ok = _listed(row["principal_values"], row["principal_counts"],
                                             max_values)
    ips, n_ips, i_ok = _listed(row["source_ip_values"], row["source_ip_counts"], max_values)
    if not (p_ok and i_ok):  # the schema: both lists empty when either is incomplete
        principals, ips = [], []
    return {
        "window_size": size, "window_start_ms": row["start"],
        "window_end_ms": row["start"] + size_ms,
        **{d: row[d] for d in DIMENSIONS},
        "count": row["count"], "distinct_principals": n_principals,
        "distinct_source_ips": n_ips, "principals": principals, "source_ips": ips,
        "values_complete": p_ok and i_ok, "correction": correction, "partition": partition,
        "trigger_offset": trigger_offset, "watermark_ms": watermark_ms, "emitted_ms": emitted_ms,
    }


def aggregate_key(datum: dict[str, Any]) -> str:
    """The Kafka key of a datum (see ``schemas/Aggregate.v1.avsc``). ``%`` and ``|`` inside a
    part are percent-encoded, so no two records' keys collide whatever their values."""
    parts = [datum["window_size"], str(datum["window_start_ms"]),
             *(datum[d] for d in DIMENSIONS)]
    if datum["correction"]:
        parts += ["correction", f"{datum['partition']}:{datum['trigger_offset']}"]
    return "|".join(p.replace("%", "%25").replace("|", "%7C") for p in parts)


def minute_stats(table: pa.Table) -> dict[int, dict[tuple[str, str, str, str], dict[str, Any]]]:
    """Per minute start and Insights key: calls, errors and the attribution counters
    (``arns``, ``user_agents``, ``error_codes`` with ``null`` for calls without an error, as
    AWS writes it; ``error_arns``, ``error_user_agents`` of the failed calls), from 1-minute
    Insights partials: the fields of :class:`pipeline.insights.baseline.MinuteStats`."""
    out: dict[int, dict[tuple[str, str, str, str], dict[str, Any]]] = {}
    for row in table.to_pylist():
        key = (row["account"], row["region"], row["event_source"], row["event_name"])
        stats = out.setdefault(row["start"], {}).setdefault(key, _empty_stats())
        count, outcome = row["count"], row["outcome"]
        stats["calls"] += count
        _add(stats["error_codes"], [("null" if outcome == "OK" else outcome, count)])
        _add(stats["arns"], [(row["principal"], count)])
        _add(stats["user_agents"], [(row["user_agent"], count)])
        if outcome != "OK":
            stats["errors"] += count
            _add(stats["error_arns"], [(row["principal"], count)])
            _add(stats["error_user_agents"], [(row["user_agent"], count)])
    return out


def _empty_stats() -> dict[str, Any]:
    return {"calls": 0, "errors": 0, "arns": Counter(), "user_agents": Counter(),
            "error_codes": Counter(), "error_arns": Counter(), "error_user_agents": Counter()}


def _add(counter: Counter[str], pairs: Iterable[tuple[str | None, int]]) -> None:
    for value, count in pairs:
        if value is not None:
            counter[value] += count
