"""Stage 1 for the Sigma rules that evaluate column-wise (:mod:`pipeline.rules.sigma.vector`):
one boolean mask per rule over the whole batch, then Hits for the matched rows only.

A rule that alerts only on its own (no correlation reads it) gets *aggregated* Hits: its
matches in one batch that share a dedup key and a dedup window become one Hit carrying their
count, event-time span and first eventIDs. That is exactly what the stateful stage would make
of them one by one (a window's count, first/last seen and samples do not depend on how its
matches are split), at a fraction of the cost for broad rules that match much of the traffic.
Rows a mask leaves undecided are converted in full and decided by the per-row matcher.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.rules.model import Hit, Rule
from pipeline.rules.ruleset import RuleSet
from pipeline.rules.sigma.columns import Columns
from pipeline.rules.sigma.loader import CompiledSigmaRule
from pipeline.rules.sigma.vector import VectorRule, vectorize

Views = Callable[[Sequence[int]], dict[int, dict[str, Any]]]
"""Slim records (just the hit fields and the named rules' fields) for the given rows."""
Full = Callable[[int], Mapping[str, Any]]
"""The whole CloudTrail record of a row."""
MAX_SAMPLE = 1000
"""eventIDs an aggregated hit carries at most (the largest ``[alerter] sample_size``)."""


@dataclass(frozen=True, slots=True)
class Vectorized:
    rule: Rule
    vector: VectorRule
    aggregate: bool


def vectorized_rules(rules: RuleSet) -> list[Vectorized]:
    """The rules of ``rules`` that evaluate column-wise (aggregated when only they read
    their matches)."""
    out = []
    for rule in rules.rules.values():
        if isinstance(rule, CompiledSigmaRule):
            vector = vectorize(rule)
            if vector is not None:
                aggregate = rules.alerts_alone(rule.meta.id) and not rules.feeds(rule.meta.id)
                out.append(Vectorized(rule, vector, aggregate))
    return out


def matched_rows(item: Vectorized, columns: Columns, full: Full) -> list[int]:
    verdict = item.vector.evaluate(columns)
    rows: list[int] = pc.indices_nonzero(verdict.matched).to_pylist()
    undecided = pc.indices_nonzero(verdict.undecided).to_pylist()
    rows.extend(r for r in undecided if item.rule.matches(full(r)))
    return sorted(rows)


def vector_hits(table: pa.Table, rules: RuleSet, items: Sequence[Vectorized], views: Views,
                full: Full, produced: Sequence[int | None]) -> dict[int, list[Hit]]:
    """Hits of the vectorized rules, by the row they are reported at (an aggregated Hit at
    its group's first row)."""
    if not items:
        return {}
    columns = Columns(table)
    times = table.column("eventTimeMs").to_pylist() if "eventTimeMs" in table.column_names \
        else [None] * table.num_rows
    out: dict[int, list[Hit]] = {}
    for item in items:
        rows = matched_rows(item, columns, full)
        if not rows:
            continue
        slim = views(rows)
        if not item.aggregate:
            for row in rows:
                out.setdefault(row, []).extend(rules.hits(
                    slim[row], produced_ms=produced[row] or 0, rules=[item.rule]))
            continue
        for row, hit in _aggregated(rules, item.rule, rows, slim, times, produced):
            out.setdefault(row, []).append(hit)
    return out


def _aggregated(rules: RuleSet, rule: Rule, rows: list[int], slim: dict[int, dict[str, Any]],
                times: Sequence[int | None], produced: Sequence[int | None],
                ) -> list[tuple[int, Hit]]:
    """One Hit per (dedup key, dedup window) of ``rule``'s matched rows, in row order."""
    period_ms = rule.meta.dedup_period_ms
    groups: dict[tuple[str, int], _Group] = {}
    for row in rows:
        stamp = times[row]
        time_ms: int = stamp if stamp is not None else produced[row] or 0
        key = rule.describe(slim[row]).dedup_key
        group = groups.get((key, time_ms // period_ms))
        if group is None:
            groups[(key, time_ms // period_ms)] = _Group(row, time_ms)
        else:
            group.add(time_ms, str(slim[row].get("eventID") or ""))
    out = []
    for group in groups.values():
        row = group.first_row
        hit = rules.hits(slim[row], produced_ms=produced[row] or 0, rules=[rule])[0]
        if group.count > 1:
            hit = replace(hit, count=group.count, event_time_ms=group.first_ms,
                          last_time_ms=group.last_ms, more_ids=tuple(group.more_ids))
        out.append((row, hit))
    return out


class _Group:
    """The matches of one dedup window so far: the first row's hit stands for them."""

    __slots__ = ("count", "first_ms", "first_row", "last_ms", "more_ids")

    def __init__(self, row: int, time_ms: int) -> None:
        self.first_row, self.count = row, 1
        self.first_ms = self.last_ms = time_ms
        self.more_ids: list[str] = []

    def add(self, time_ms: int, event_id: str) -> None:
        self.count += 1
        self.first_ms = min(self.first_ms, time_ms)
        self.last_ms = max(self.last_ms, time_ms)
        if len(self.more_ids) < MAX_SAMPLE:
            self.more_ids.append(event_id)
