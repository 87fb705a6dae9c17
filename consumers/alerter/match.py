"""Stage 1 on a batch: pick the candidate rows by the rules' index columns (read as whole
columns, no per-row decoding), turn only those rows into CloudTrail JSON, and run the rules.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.events.mapping import from_avro
from pipeline.rules.model import Hit, Rule
from pipeline.rules.ruleset import RuleSet


def column_values(table: pa.Table, path: str) -> list[Any]:
    """The values at a dotted path (``userIdentity.type``) for every row; None where absent."""
    head, *rest = path.split(".")
    if head not in table.column_names:
        return [None] * table.num_rows
    column: Any = table.column(head)
    for name in rest:
        if not pa.types.is_struct(column.type) or column.type.get_field_index(name) < 0:
            return [None] * table.num_rows
        column = pc.struct_field(column, name)
    values: list[Any] = column.to_pylist()
    return values


def candidate_rows(table: pa.Table, rules: RuleSet) -> list[tuple[int, list[Rule]]]:
    """``(row, rules to test)`` for every row some rule can match."""
    paths = rules.index_paths
    columns = [column_values(table, p) for p in paths]
    out: list[tuple[int, list[Rule]]] = []
    for row in range(table.num_rows):
        found = rules.candidates({p: col[row] for p, col in zip(paths, columns, strict=True)})
        if found:
            out.append((row, found))
    return out


def batch_hits(table: pa.Table, rules: RuleSet) -> list[Hit]:
    """Every Hit the events in ``table`` (a decoded events batch with coordinates) make, in
    row order. Raises InvalidDatum for a row that is not a valid event (the Runner bisects)."""
    picked = candidate_rows(table, rules)
    if not picked:
        return []
    subset = table.take(pa.array([row for row, _ in picked], pa.int64()))
    produced = subset.column("_timestamp_ms").to_pylist()
    out: list[Hit] = []
    for datum, ts_ms, (_, candidates) in zip(subset.to_pylist(), produced, picked,
                                            strict=True):
        out.extend(rules.hits(from_avro(datum), produced_ms=ts_ms or 0, rules=candidates))
    return out
