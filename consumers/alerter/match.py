"""Stage 1 on a batch: pick the candidate rows by the rules' index columns (read as whole
columns, no per-row decoding), turn only those rows into CloudTrail JSON, and run the rules.

Rules that must see every event are first run on a *slim* view of each row holding only the
fields they read (when they say which: compiled Sigma rules do), built from those columns
alone; only rows they match there are converted in full and tested again. The slim view is
exact for such a rule because it reads nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from consumers.alerter.vectorized import vector_hits, vectorized_rules
from pipeline.events.mapping import from_avro
from pipeline.events.plan import parse_json_text
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
    """The fields a rule reads, when it says: plain column paths, and JSON-text members whole
    (their text; both rule engines parse it when a path walks in). None: it does not say."""
    fields: Sequence[str] | None = getattr(rule, "fields", None)
    if not fields or any(f.split(".")[0] in _WHOLE_ONLY for f in fields):
        return None
    return tuple(dict.fromkeys(f.split(".")[0] if f.split(".")[0] in JSON_TEXT else f
                               for f in fields))


JSON_TEXT = frozenset({"requestParameters", "responseElements", "additionalEventData",
                       "serviceEventDetails"})
_WHOLE_ONLY = frozenset({"resources", "unmodelled", "tlsDetails", "insightDetails",
                         "addendum", "edgeDeviceDetails"})
"""Members whose column form (lists, maps) differs from their JSON form: rules reading them
get the whole record."""


HIT_FIELDS = ("eventID", "eventTime", "eventName", "eventSource", "awsRegion",
              "sourceIPAddress", "recipientAccountId", "userIdentity.accountId",
              "userIdentity.arn", "userIdentity.principalId")
"""What a Hit and a Sigma rule's Detail read besides the rule's own fields."""


def _slim_rows(table: pa.Table, rows: Sequence[int], paths: Sequence[str]
               ) -> dict[int, dict[str, Any]]:
    """For each of ``rows``, a record holding just ``paths`` (absent and null left out; a
    JSON-text member as its text when an object or array, else parsed)."""
    views: dict[int, dict[str, Any]] = {row: {} for row in rows}
    subset = table.take(pa.array(rows, pa.int64())) if len(rows) < table.num_rows else table
    for path in paths:
        *parents, leaf = path.split(".")
        text = path in JSON_TEXT
        for row, value in zip(rows, column_values(subset, path), strict=True):
            if text and value is not None and value[:1] not in ("{", "["):
                # JSON null, or a scalar (a member its source sent as JSON text is a string
                # here): parsed, as from_avro does; CloudTrailEvent parses only objects/arrays.
                value = parse_json_text(value, path)
            if value is None:
                continue
            node = views[row]
            for name in parents:
                node = node.setdefault(name, {})
            node[leaf] = value
    return views


class Plan:
    """Which rules to test on which rows, and how: ``full[row]`` rules need the whole record;
    ``slim[row]`` rules read only plain columns (their ``fields``), so a slim view will do;
    ``odd`` rows carry unmodelled members (keys in another case, values of another type) that
    may hold index fields the columns lack, so their candidates come from the whole record.
    ``slim_of`` gives each rule's slim fields (None: it needs the whole record); rules it
    does not know (the vectorized ones) are left out."""

    def __init__(self, table: pa.Table, rules: RuleSet,
                 slim_of: Mapping[str, tuple[str, ...] | None]) -> None:
        self.full: dict[int, list[Rule]] = {}
        self.slim: dict[int, list[Rule]] = {}
        self.paths: set[str] = set(HIT_FIELDS)
        self._rules, self._slim_of = rules, slim_of
        self.odd = {row for row, v in enumerate(column_values(table, "unmodelled"))
                    if v is not None}
        for path in rules.index_paths:
            # Candidates depend on the value only: split them once per distinct value.
            split: dict[Any, tuple[list[Rule], list[Rule]]] = {}
            for row, value in enumerate(column_values(table, path)):
                if value is None or row in self.odd:
                    continue
                parts = split.get(value)
                if parts is None:
                    parts = split[value] = self._split(rules.candidates({path: value},
                                                                        always=False))
                self._add(row, parts)
        if rules.always:
            parts = self._split(list(rules.always))
            for row in range(table.num_rows):
                self._add(row, parts)

    def _split(self, found: list[Rule]) -> tuple[list[Rule], list[Rule]]:
        full: list[Rule] = []
        slim: list[Rule] = []
        for rule in found:
            rid = rule.meta.id
            if rid not in self._slim_of:
                continue
            fields = self._slim_of[rid]
            if fields is None:
                full.append(rule)
            else:
                slim.append(rule)
                self.paths.update(fields)
                self.paths.update(self._rules.route_paths(rid))
        return full, slim

    def _add(self, row: int, parts: tuple[list[Rule], list[Rule]]) -> None:
        full, slim = parts
        if full:
            self.full.setdefault(row, []).extend(full)
        if slim:
            self.slim.setdefault(row, []).extend(slim)


class BatchMatcher:
    """Stage 1 for one rule set: :meth:`hits` of a decoded events batch."""

    def __init__(self, rules: RuleSet) -> None:
        self._rules = rules
        self._vectorized = vectorized_rules(rules)
        self._skip = frozenset(v.rule.meta.id for v in self._vectorized)
        self._slim_of = {rid: _slim_paths(rule) for rid, rule in rules.rules.items()
                         if rid not in self._skip}
        paths = set(HIT_FIELDS)
        for item in self._vectorized:
            paths.update(_slim_paths(item.rule) or ())
            paths.update(rules.route_paths(item.rule.meta.id))
        self._vector_paths = sorted(paths)

    @property
    def vectorized(self) -> int:
        return len(self._vectorized)

    def hits(self, table: pa.Table) -> list[Hit]:
        """Every Hit the events in ``table`` (a decoded events batch with coordinates) make,
        in row order. Raises InvalidDatum for a row that is not a valid event (the Runner
        bisects)."""
        rules = self._rules
        produced = table.column("_timestamp_ms").to_pylist()

        def full(row: int) -> dict[str, Any]:
            return from_avro(table.slice(row, 1).to_pylist()[0])

        found = vector_hits(table, rules, self._vectorized,
                            lambda rows: _slim_rows(table, rows, self._vector_paths),
                            full, produced)
        plan = Plan(table, rules, self._slim_of)
        slim_rows = sorted(set(plan.slim) - set(plan.full))
        if slim_rows:
            views = _slim_rows(table, slim_rows, sorted(plan.paths))
            for row in slim_rows:
                found.setdefault(row, []).extend(rules.hits(
                    views[row], produced_ms=produced[row] or 0, rules=plan.slim[row]))
        full_rows = sorted(plan.full.keys() | plan.odd)
        if full_rows:
            subset = table.take(pa.array(full_rows, pa.int64()))
            for row, datum in zip(full_rows, subset.to_pylist(), strict=True):
                candidates = (None if row in plan.odd
                              else plan.full[row] + plan.slim.get(row, []))
                found.setdefault(row, []).extend(rules.hits(
                    from_avro(datum), produced_ms=produced[row] or 0, rules=candidates,
                    skip=self._skip))
        return [hit for row in sorted(found) for hit in found[row]]
