"""Differential test: our compiled Sigma matcher against pySigma's SQLite backend.

Every SigmaHQ CloudTrail rule of the corpus is converted to SQL by ``pysigma-backend-sqlite``
and run over an in-memory SQLite table holding every corpus record, flattened the way the
backend's SQL expects (Zircolite's layout): one ``TEXT COLLATE NOCASE`` column per dotted
field path the rules read, named by that path; JSON-text members parsed before walking; an
object stored as its compact JSON text; JSON booleans as ``'true'``/``'false'``; ``null`` or
missing as SQL NULL; a ``REGEXP`` function registered as the backend's README says. Our
verdict on every (rule, record) pair must equal the backend's, except the pairs listed in
``ALLOWED`` with the reason SQLite cannot express what the rule means.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule

from pipeline.rules.sigma import CompiledSigmaRule, load_sigma

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
SIGMA_DIR = CORPUS / "sigma" / "aws_cloudtrail"
PACK_DIR = Path(__file__).resolve().parents[2] / "pipeline" / "rules" / "pack" / "sigma"
JSON_TEXT = {"requestParameters", "responseElements", "additionalEventData",
             "serviceEventDetails"}

ALLOWED: dict[tuple[str, str], str] = {}
"""(rule file, eventID) -> why SQLite and Sigma disagree on that pair."""


def records() -> list[dict[str, Any]]:
    out = []
    for path in sorted((CORPUS / "cloudtrail").glob("*/records.jsonl")):
        out.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return out


def _column_value(record: dict[str, Any], path: str) -> Any:
    """The backend's view of one field: a single SQL value (lists cannot be expressed: the
    values reached are stored as the JSON text of a list, which LIKE can search but ``=``
    cannot match)."""
    nodes: list[Any] = [record]
    through_list = False
    for segment in path.split("."):
        reached: list[Any] = []
        for node in nodes:
            if isinstance(node, str) and node[:1] in "{[":
                node = json.loads(node)
            if isinstance(node, list):
                through_list = True
                reached.extend(n.get(segment) for n in node if isinstance(n, dict))
            elif isinstance(node, dict):
                reached.append(node.get(segment))
        nodes = [n for n in reached if n is not None]
    if not nodes:
        return None
    value = nodes if through_list else nodes[0]
    if isinstance(value, str) and path in JSON_TEXT and value[:1] in "{[":
        value = json.loads(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


def _database(rows: list[dict[str, Any]], fields: list[str]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.create_function("regexp", 2, lambda p, v: v is not None and re.search(p, str(v)) is not None)
    columns = ", ".join(f'"{f}" TEXT COLLATE NOCASE' for f in fields)
    db.execute(f"CREATE TABLE logs ({columns})")
    marks = ", ".join("?" for _ in fields)
    db.executemany(f"INSERT INTO logs VALUES ({marks})",
                   [[_column_value(r, f) for f in fields] for r in rows])
    return db


def backend_verdicts(rows: list[dict[str, Any]], directory: Path) -> dict[str, set[int]]:
    """Rule id -> indexes (into ``rows``) of the records the backend's SQL selects."""
    # Unresolved: a rule that only feeds a correlation still converts on its own.
    collection = SigmaCollection.load_ruleset([directory], resolve_references=False)
    backend = sqliteBackend()
    rules = [r for r in collection.rules if isinstance(r, SigmaRule)]
    fields = sorted({f for r in rules for f in backend.required_fields(r)})
    queries = {str(r.id): backend.convert_rule(r) for r in rules}
    db = _database(rows, fields)
    return {rule_id: {row - 1 for q in qs for (row,) in
                      db.execute(q.replace("SELECT *", "SELECT rowid", 1))}
            for rule_id, qs in queries.items()}


def _indexed_pass_s(rules: list[CompiledSigmaRule], rows: list[dict[str, Any]]) -> float:
    """Seconds to test every record against the rules its eventName/eventSource can reach
    (what the alerter does), over a few passes for a steadier figure."""
    by_value: dict[tuple[str, str], list[CompiledSigmaRule]] = {}
    always = [r for r in rules if r.meta.index is None]
    for r in rules:
        for field, values in (r.meta.index or {}).items():
            for value in values:
                by_value.setdefault((field, value), []).append(r)
    passes = 5
    started = time.perf_counter()
    for _ in range(passes):
        for row in rows:
            for field in ("eventName", "eventSource"):
                value = row.get(field)
                for r in by_value.get((field, value.casefold() if isinstance(value, str)
                                       else ""), ()):
                    r.matches(row)
            for r in always:
                r.matches(row)
    return (time.perf_counter() - started) / passes


@pytest.mark.parametrize("directory", [SIGMA_DIR, PACK_DIR], ids=["sigmahq", "pack"])
def test_matcher_agrees_with_the_sqlite_backend(directory: Path) -> None:
    """SigmaHQ's 57 CloudTrail rules, and the default pack's single-event rules."""
    rows = records()
    load = load_sigma([directory])
    assert not load.problems
    expected = backend_verdicts(rows, directory)
    assert set(expected) == {r.meta.id for r in load.rules}
    started = time.perf_counter()
    ours = {r.meta.id: {i for i, row in enumerate(rows) if r.matches(row)} for r in load.rules}
    elapsed_s = time.perf_counter() - started
    source = {r.meta.id: r.meta.source.removeprefix("sigma:") for r in load.rules}
    disagreements: dict[tuple[str, str], str] = {}
    for rule_id, selected in expected.items():
        for i in selected ^ ours[rule_id]:
            who = "ours only" if i in ours[rule_id] else "backend only"
            disagreements[(source[rule_id], str(rows[i].get("eventID")))] = who
    pairs = len(rows) * len(load.rules)
    matched = sum(len(s) for s in expected.values())
    print(f"\nsigma differential: {pairs} pairs compared, {matched} matched by the backend, "
          f"{sum(len(s) for s in ours.values())} by us, {pairs - len(disagreements)} agree, "
          f"{len(disagreements)} disagree")
    print(f"sigma matcher: {pairs / elapsed_s:,.0f} rule x record pairs/s unindexed, "
          f"{len(rows) / _indexed_pass_s(load.rules, rows):,.0f} records/s through all "
          f"{len(load.rules)} rules with the index (information, not a threshold)")
    for (rule, event_id), who in sorted(disagreements.items()):
        print(f"  {rule} {event_id}: {who}; allowed: {ALLOWED.get((rule, event_id), 'NO')}")
    assert set(disagreements) == set(ALLOWED)
