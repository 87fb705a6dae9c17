"""A native pack rule's declared ``fields`` are exact: on the slim view the alerter builds from
just those columns (plus the Hit fields) it gives the verdict and the description it gives on
the whole record, and tracing it reads no field outside the list.

The records: every rule's own test logs and those of the Panther rules it names, every corpus
record, 20,000 generated events holding every scenario, and the rules' own logs with their
JSON-text members null or sent as text (see :func:`fieldtrace.all_records`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest
from fieldtrace import Trace, all_records, trace

from consumers.alerter.match import HIT_FIELDS, _slim_paths, _slim_rows
from pipeline.events.batch import AvroBatchDecoder
from pipeline.events.errors import InvalidRecord
from pipeline.events.mapping import IngestMeta, from_avro, to_avro
from pipeline.events.schemas import default_registry
from pipeline.events.wire import encode
from pipeline.rules.native.load import NativeRule, load_pack

PACK = load_pack()
FIELDED = [r for r in PACK.rules + PACK.disabled if r.fields]


@dataclass(frozen=True)
class Batch:
    """The records (as given) and, for each that the alerter would evaluate on a slim view,
    its row in the decoded ``table`` and its whole record as the alerter rebuilds it."""

    records: list[dict[str, Any]]
    table: pa.Table
    rows: list[int]
    whole: dict[int, dict[str, Any]]


@pytest.fixture(scope="module")
def batch() -> Batch:
    records = all_records(PACK.rules + PACK.disabled)
    ingest = IngestMeta(1_764_000_000_000, "test", "fields", "x")
    values = []
    for record in records:
        try:
            values.append(encode(to_avro(record, ingest=ingest)))
        except InvalidRecord:  # never reaches the alerter (YAML dates in a test log, ...)
            continue
    decoded = AvroBatchDecoder(reader=default_registry().newest())(values)
    assert not decoded.errors
    table = decoded.table
    # Rows with unmodelled members get the whole record from the alerter, never a slim view.
    rows = [i for i, v in enumerate(table.column("unmodelled").to_pylist()) if v is None]
    assert len(rows) > 20_000
    whole = {row: from_avro(datum) for row, datum in
             zip(rows, table.take(pa.array(rows, pa.int64())).to_pylist(), strict=True)}
    return Batch(records, table, rows, whole)


def _outcome(fn: Callable[[Mapping[str, Any]], Any], event: Mapping[str, Any]) -> Any:
    """What ``fn(event)`` returns, or the type of what it raises."""
    try:
        return fn(event)
    except Exception as exc:  # a rule that raises must raise on both views alike
        return f"raised {type(exc).__name__}"


def test_every_rule_without_fields_cannot_have_them(batch: Batch) -> None:
    """A rule left without ``fields`` reads something a slim view cannot serve."""
    for rule in PACK.rules + PACK.disabled:
        if rule.fields:
            continue
        seen = Trace()
        for record in batch.records:
            seen.update(trace(rule, record)[0])
        assert seen.whole, (rule.meta.id, sorted(seen.paths))


@pytest.mark.parametrize("rule", FIELDED, ids=lambda r: r.meta.id)
def test_the_slim_view_gives_the_whole_records_verdict(rule: NativeRule, batch: Batch) -> None:
    declared = _slim_paths(rule)
    assert declared is not None, "fields the alerter cannot serve from columns"
    slim = _slim_rows(batch.table, batch.rows, sorted(set(declared) | set(HIT_FIELDS)))
    matched = 0
    for row in batch.rows:
        verdict = _outcome(rule.matches, batch.whole[row])
        assert _outcome(rule.matches, slim[row]) == verdict, (row, batch.whole[row])
        if verdict is True:
            matched += 1
            assert (_outcome(rule.describe, slim[row])
                    == _outcome(rule.describe, batch.whole[row])), (row, batch.whole[row])
    assert matched, "no record exercises the rule"


@pytest.mark.parametrize("rule", FIELDED, ids=lambda r: r.meta.id)
def test_the_rule_reads_only_its_declared_fields(rule: NativeRule, batch: Batch) -> None:
    declared = set(rule.fields or ())
    for record in batch.records:
        read, _ = trace(rule, record)
        assert not read.whole, (read.whole, record)
        assert read.paths <= declared, (sorted(read.paths - declared), record)
