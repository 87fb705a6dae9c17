"""Stage 1 on a batch: pick the candidate rows by the rules' index columns (read as whole
columns, no per-row decoding), turn only those rows into CloudTrail JSON, and run the rules.

Rules that must see every event are first run on a *slim* view of each row holding only the
fields they read (when they say which: compiled Sigma rules do), built from those columns
alone; only rows they match there are converted in full and tested again. The slim view is
exact for such a rule because it reads nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def _slim_paths(rule: Rule) -> tuple[str, ...] | None:
    """The fields a rule reads, when it says and they are plain columns (not JSON text)."""
    fields: Sequence[str] | None = getattr(rule, "fields", None)
    if not fields or any(f.split(".")[0] in _JSON_TEXT for f in fields):
        return None
    return tuple(fields)


_JSON_TEXT = frozenset({"requestParameters", "responseElements", "additionalEventData",
                        "serviceEventDetails", "resources", "unmodelled"})


HIT_FIELDS = ("eventID", "eventTime", "eventName", "eventSource", "awsRegion",
              "sourceIPAddress", "recipientAccountId", "userIdentity.accountId",
              "userIdentity.arn", "userIdentity.principalId")
"""What a Hit and a Sigma rule's Detail read besides the rule's own fields."""


def _slim_rows(table: pa.Table, rows: Sequence[int], paths: Sequence[str]
               ) -> dict[int, dict[str, Any]]:
    """For each of ``rows``, a record holding just ``paths`` (absent and null left out)."""
    views: dict[int, dict[str, Any]] = {row: {} for row in rows}
    subset = table.take(pa.array(rows, pa.int64())) if len(rows) < table.num_rows else table
    for path in paths:
        *parents, leaf = path.split(".")
        for row, value in zip(rows, column_values(subset, path), strict=True):
            if value is None:
                continue
            node = views[row]
            for name in parents:
                node = node.setdefault(name, {})
            node[leaf] = value
    return views


class Plan:
    """Which rules to test on which rows, and how: ``full[row]`` rules need the whole record;
    ``slim[row]`` rules read only plain columns (their ``fields``), so a slim view will do."""

    def __init__(self, table: pa.Table, rules: RuleSet) -> None:
        self.full: dict[int, list[Rule]] = {}
        self.slim: dict[int, list[Rule]] = {}
        self.paths: set[str] = set(HIT_FIELDS)
        self._slim_ok: dict[str, bool] = {}
        paths = rules.index_paths
        columns = [column_values(table, p) for p in paths]
        for row in range(table.num_rows):
            found = rules.candidates({p: col[row] for p, col in zip(paths, columns, strict=True)},
                                     always=False)
            self._place(row, found, rules)
        if rules.always:
            for row in range(table.num_rows):
                self._place(row, list(rules.always), rules)

    def _place(self, row: int, found: list[Rule], rules: RuleSet) -> None:
        for rule in found:
            fields = _slim_paths(rule)
            if fields is None:
                self.full.setdefault(row, []).append(rule)
            else:
                self.slim.setdefault(row, []).append(rule)
                self.paths.update(fields)
                self.paths.update(rules.route_paths(rule.meta.id))


def batch_hits(table: pa.Table, rules: RuleSet) -> list[Hit]:
    """Every Hit the events in ``table`` (a decoded events batch with coordinates) make, in
    row order. Raises InvalidDatum for a row that is not a valid event (the Runner bisects)."""
    plan = Plan(table, rules)
    produced = table.column("_timestamp_ms").to_pylist()
    found: dict[int, list[Hit]] = {}
    slim_rows = sorted(set(plan.slim) - set(plan.full))
    if slim_rows:
        views = _slim_rows(table, slim_rows, sorted(plan.paths))
        for row in slim_rows:
            found[row] = rules.hits(views[row], produced_ms=produced[row] or 0,
                                    rules=plan.slim[row])
    full_rows = sorted(plan.full)
    if full_rows:
        subset = table.take(pa.array(full_rows, pa.int64()))
        for row, datum in zip(full_rows, subset.to_pylist(), strict=True):
            candidates = plan.full[row] + plan.slim.get(row, [])
            found[row] = rules.hits(from_avro(datum), produced_ms=produced[row] or 0,
                                    rules=candidates)
    return [hit for row in sorted(found) for hit in found[row]]
