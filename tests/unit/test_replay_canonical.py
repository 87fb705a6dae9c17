"""The column-wise canonical records equal re-dumping each record's CloudTrail JSON (the
contract's definition) over the whole corpus and over generated events."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from pipeline.config import Config
from pipeline.daemon import events_decoder
from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.mirror.json import cloudtrail_json
from pipeline.replay import canonical as module
from pipeline.replay.canonical import canonical, json_records
from producers.generator.engine import Generator

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "records.jsonl:1")


def _table(records: list[dict[str, object]]) -> pa.Table:
    decoded = events_decoder(Config())([wire.encode(to_avro(r, ingest=INGEST))
                                        for r in records])
    assert not decoded.errors
    return decoded.table


def _corpus() -> list[dict[str, object]]:
    return [json.loads(line) for p in sorted(CORPUS.glob("*/records.jsonl"))
            for line in p.read_text().splitlines() if line.strip()]


def _expected(table: pa.Table) -> list[bytes]:
    return [canonical(text) for text in cloudtrail_json(table)]


@pytest.mark.parametrize(("batch", "chunk_rows"), [(97, 65_536), (10_000, 65_536),
                                                  (10_000, 100)])
def test_the_whole_corpus_gives_the_same_bytes_as_redumping(
        batch: int, chunk_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "CHUNK_ROWS", chunk_rows)
    records = _corpus()
    assert len(records) > 1_000
    for start in range(0, len(records), batch):
        table = _table(records[start:start + batch])
        assert json_records(table) == _expected(table)


def test_generated_events_give_the_same_bytes_and_most_take_the_fast_way(
        monkeypatch: pytest.MonkeyPatch) -> None:
    table = _table(list(Generator(7, 5, 3, start_ms=1_764_000_000_000).records(3_000)))
    slow_rows: list[int] = []
    real = cloudtrail_json

    def counted(slow: pa.Table) -> list[bytes]:
        slow_rows.append(slow.num_rows)
        return real(slow)

    monkeypatch.setattr(module, "cloudtrail_json", counted)
    assert json_records(table) == _expected(table)
    assert sum(slow_rows) < table.num_rows // 10


def test_every_record_is_sorted_at_every_level_without_spaces() -> None:
    table = _table(_corpus())
    for text in json_records(table):
        value = orjson.loads(text)
        assert orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == text or \
            json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"),
                       ensure_ascii=False).encode("utf-8", "surrogatepass") == text
