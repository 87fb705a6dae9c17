"""The reader's merge: exact cross-account rollups from ``Aggregate`` rows (DuckDB over Arrow).

Why a merge in the reader rather than a repartition topic: the aggregator's windows are keyed by
(account, region, ...) so each key lives in one events partition and its base record is exact on
its own. Every rollup (per eventName across accounts, top principals, ...) is a sum of those
exact parts, so summing them where they are read gives the exact answer with no second stage to
run, no second changelog to keep and no extra latency. The rules:

1. **De-duplicate by Kafka key.** A window's base record has the key (window_size,
   window_start_ms, dimensions); a correction adds (partition, trigger_offset). The compacted
   topic keeps the latest value per key, and the lake (where a retried upload or a replay can
   leave copies) is reduced the same way: one row per key, the latest ``emitted_ms``.
2. **Merge parts.** A window key's base record and its corrections add: ``count`` and every
   per-value count add up. The distinct counts of a group of parts are the number of distinct
   values in their merged lists when every part has ``values_complete``; a group of exactly one
   part keeps that part's own (exact) distinct counts; otherwise they are the sum of the parts'
   (an upper bound) and ``distinct_exact`` is false.
3. **Roll up per window** by any of :data:`BY`: the dimensions (``errorCode`` keeps only failed
   calls, outcome != OK; ``key`` is all six), or one list dimension (``principal``,
   ``sourceIP``) whose counts are the summed per-value counts; those are exact when every part
   in the group listed its values (``exact``), a lower bound otherwise.
4. **Top N** per window: rows by count descending, ties by the group values ascending.

Windows are selected by overlap: a window [start, end) is in [start_ms, end_ms) when
``end > start_ms and start < end_ms``.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from pipeline.aggregates.columns import DIMENSIONS
from pipeline.aggregates.table import WINDOW_SIZES

BY: dict[str, str] = {
    "account": "account", "region": "region", "eventSource": "event_source",
    "eventName": "event_name", "errorCode": "outcome", "identityType": "identity_type",
}
"""Simple rollup names (CloudTrail's spelling) -> Aggregate column."""
LISTS: dict[str, str] = {"principal": "principals", "sourceIP": "source_ips"}
"""List rollup names -> the Aggregate list column whose values they count."""
OUTPUT_NAMES: dict[str, str] = {"errorCode": "error_code", "principal": "principal",
                                "sourceIP": "source_ip"}
"""Output column names where they differ from the Aggregate column."""
KEY = "key"
ALL_BY = (*BY, *LISTS, KEY)

_KAFKA_KEY = (f"window_size, window_start_ms, {', '.join(DIMENSIONS)}, correction, "
              "CASE WHEN correction THEN partition END, "
              "CASE WHEN correction THEN trigger_offset END")

_PARTS = f"""
SELECT * FROM rows
WHERE window_size = $window_size AND window_end_ms > $start_ms AND window_start_ms < $end_ms
  AND ($errors_only = false OR outcome <> 'OK')
QUALIFY row_number() OVER (PARTITION BY {_KAFKA_KEY} ORDER BY emitted_ms DESC) = 1
"""


def _distinct(column: str, counts: str) -> str:
    listed = f"length(list_distinct(flatten(list(list_transform({column}, lambda v: v.value)))))"
    # One capped part alone: its own counts are exact, and the sum is just them.
    return f"CASE WHEN bool_and(values_complete) THEN {listed} ELSE sum({counts}) END::BIGINT"


def _simple_sql(cols: list[str], names: list[str]) -> str:
    select = ", ".join(f"{c} AS {n}" for c, n in zip(cols, names, strict=True))
    group = ", ".join(cols)
    return f"""
SELECT window_start_ms, any_value(window_end_ms) AS window_end_ms, {select},
  sum(count)::BIGINT AS count,
  {_distinct("principals", "distinct_principals")} AS distinct_principals,
  {_distinct("source_ips", "distinct_source_ips")} AS distinct_source_ips,
  (count(*) = 1 OR bool_and(values_complete)) AS distinct_exact,
  count_if(correction)::BIGINT AS corrections
FROM parts GROUP BY window_start_ms, {group}"""


def _list_sql(cols: list[str], names: list[str], column: str, name: str) -> str:
    group = ", ".join(["window_start_ms", *cols])
    select = "".join(f"{c} AS {n}, " for c, n in zip(cols, names, strict=True))
    return f"""
SELECT window_start_ms, any_value(window_end_ms) AS window_end_ms, {select}
  item.value AS {name}, sum(item.count)::BIGINT AS count, bool_and(complete) AS exact
FROM (SELECT *, bool_and(values_complete) OVER (PARTITION BY {group}) AS complete,
             unnest({column}) AS item FROM parts)
GROUP BY {group}, item.value"""


def _columns(by: Sequence[str]) -> tuple[list[str], list[str], str | None]:
    """(Aggregate columns, output names, list rollup name or None) for ``by``."""
    pairs = [(d, d) for b in by if b == KEY for d in DIMENSIONS]
    pairs += [(BY[b], OUTPUT_NAMES.get(b, BY[b])) for b in by if b in BY]
    lists = [b for b in by if b in LISTS]
    unknown = [b for b in by if b not in ALL_BY]
    columns = [c for c, _ in pairs]
    if unknown or not by or len(lists) > 1 or len(set(columns)) != len(columns):
        raise ValueError(f"by must name distinct rollups among {', '.join(ALL_BY)}, with at "
                         f"most one of {', '.join(LISTS)}; got {', '.join(by) or 'none'}")
    return columns, [n for _, n in pairs], lists[0] if lists else None


def check(*, window_size: str, by: Sequence[str], top: int | None
          ) -> tuple[list[str], list[str], str | None]:
    """Validate :func:`rollup`'s arguments before any data is read; returns (group columns,
    output names, list rollup or None). Raises ValueError naming what is wrong."""
    if window_size not in WINDOW_SIZES:
        raise ValueError(f"window must be one of {', '.join(WINDOW_SIZES)}, not {window_size!r}")
    if top is not None and top < 1:
        raise ValueError(f"top must be at least 1, not {top}")
    return _columns(by)


def rollup(table: pa.Table, *, window_size: str, by: Sequence[str],
           start_ms: int | None = None, end_ms: int | None = None,
           top: int | None = None) -> pa.Table:
    """The exact rollup of ``table`` (Aggregate rows, :data:`~pipeline.aggregates.table.
    ARROW_SCHEMA`; extra columns are ignored) per ``window_size`` window overlapping
    ``[start_ms, end_ms)``, grouped by the rollup names ``by`` (see :data:`ALL_BY`), merged as
    the module docstring says; at most ``top`` rows per window.

    Columns: ``window_start_ms``, ``window_end_ms``, the group columns (Aggregate names;
    ``error_code``, ``principal``, ``source_ip``), ``count``, then for simple rollups
    ``distinct_principals``, ``distinct_source_ips``, ``distinct_exact``, ``corrections``
    (correction records merged), for a list rollup ``exact``. Rows by window, count desc,
    group values. Raises ValueError for an unknown window size, rollup name or ``top`` < 1."""
    cols, names, listed = check(window_size=window_size, by=by, top=top)
    if listed is None:
        sql = _simple_sql(cols, names)
    else:
        sql = _list_sql(cols, names, LISTS[listed], OUTPUT_NAMES[listed])
        names = [*names, OUTPUT_NAMES[listed]]
    order = ", ".join(["count DESC", *names])
    limit = (f"QUALIFY row_number() OVER (PARTITION BY window_start_ms ORDER BY {order}) "
             f"<= {int(top)}" if top is not None else "")
    con = duckdb.connect()
    try:
        con.register("rows", table)
        query = (f"WITH parts AS ({_PARTS}), grouped AS ({sql}) SELECT * FROM grouped "
                 f"{limit} ORDER BY window_start_ms, {order}")
        params = {"window_size": window_size, "errors_only": "errorCode" in by,
                  "start_ms": -(2**63) if start_ms is None else start_ms,
                  "end_ms": 2**63 - 1 if end_ms is None else end_ms}
        return con.sql(query, params=params).to_arrow_table()
    finally:
        con.close()
