"""Stage 1 on a batch (vectorized Sigma masks, slim views, aggregated hits, full conversion
where needed) gives the same alerts as testing every record on its own: the same openings, the
same final counts, over the whole corpus and generated traffic with every attack scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from consumers.alerter.match import BatchMatcher
from pipeline.batches import COORDINATE_SCHEMA, with_coordinates
from pipeline.events.batch import AvroBatchDecoder
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.events.schemas import default_registry
from pipeline.events.wire import encode
from pipeline.rules.config import AlerterConfig
from pipeline.rules.model import AlertDraft, Hit
from pipeline.rules.ruleset import RuleSet, load_ruleset
from pipeline.rules.state.stage import Stage
from producers.generator.engine import Generator
from producers.generator.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
PRODUCED_MS = 1_764_000_000_000
TEN_YEARS_MS = 10 * 365 * 86_400_000  # corpus event times span years: nothing is late here


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    rules = load_ruleset(AlerterConfig(sigma_paths=[CORPUS / "sigma" / "aws_cloudtrail"]))
    assert rules.problems == []
    return rules


def records() -> list[dict[str, Any]]:
    corpus = [json.loads(line)
              for path in sorted((CORPUS / "cloudtrail").glob("*/records.jsonl"))
              for line in path.read_text().splitlines() if line.strip()]
    gen = Generator(3, 4, 3, start_ms=1_764_000_000_000, scenarios=list(SCENARIOS),
                    scenario_every=2_000)
    return corpus + list(gen.records(12_000))


def table_of(batch: list[dict[str, Any]]) -> pa.Table:
    ingest = IngestMeta(1_764_000_000_000, "test", "unit", "x")
    decoded = AvroBatchDecoder(reader=default_registry().newest())(
        [encode(to_avro(r, ingest=ingest)) for r in batch])
    assert not decoded.errors
    n = decoded.table.num_rows
    coordinates = pa.Table.from_arrays(
        [pa.array(["events"] * n), pa.array([0] * n, pa.int32()), pa.array(range(n), pa.int64()),
         pa.array([PRODUCED_MS] * n, pa.int64()), pa.array([None] * n, pa.binary()),
         pa.array([1] * n, pa.int32())], schema=COORDINATE_SCHEMA)
    return with_coordinates(decoded.table, coordinates)


def alerts(rules: RuleSet, hits: list[Hit]) -> tuple[set[str], dict[str, int]]:
    stage = Stage({i: r.meta for i, r in rules.rules.items()}, rules.correlations,
                  grace_ms=TEN_YEARS_MS, max_keys=10_000_000, sample_size=10)
    drafts: list[AlertDraft] = []
    for hit in hits:
        drafts.extend(stage.observe(hit))
    drafts.extend(stage.flush_updates())
    counts: dict[str, int] = {}
    for d in drafts:
        counts[d.alert_id] = max(counts.get(d.alert_id, 0), d.count)
    return {d.alert_id for d in drafts if d.update == 0}, counts


def test_the_batch_path_raises_what_record_by_record_evaluation_raises(rules: RuleSet) -> None:
    batch = records()
    matcher = BatchMatcher(rules)
    assert matcher.vectorized >= 40
    by_record = [hit for record in batch for hit in rules.hits(record, produced_ms=PRODUCED_MS)]
    table = table_of(batch)
    by_batch = [hit for start in range(0, table.num_rows, 5_000)
                for hit in matcher.hits(table.slice(start, 5_000))]
    assert len(by_batch) < len(by_record)  # the broad rules' matches were aggregated
    assert sum(h.count for h in by_batch) == len(by_record)
    expected, got = alerts(rules, by_record), alerts(rules, by_batch)
    assert len(expected[0]) > 50
    assert got[0] == expected[0]
    assert got[1] == expected[1]
