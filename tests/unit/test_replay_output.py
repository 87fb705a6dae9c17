"""Replay output: sorted canonical CloudTrail JSON, byte-identical for the same records."""

from __future__ import annotations

import gzip
import io
import json
import random
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from pipeline.config import Config
from pipeline.daemon import events_decoder
from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, from_avro, to_avro
from pipeline.replay.canonical import canonical_records
from pipeline.replay.hot import OFFSET, PARTITION
from pipeline.replay.output import output_format, write_file, write_records

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "records.jsonl:1")
DATUMS = [to_avro(json.loads(line), ingest=INGEST) for p in sorted(CORPUS.glob("*/records.jsonl"))
          for line in p.read_text().splitlines() if line.strip()]


def matched_table(order: list[int]) -> pa.Table:
    """The corpus as a replay's matched table, rows in ``order``; row i sits at partition
    i % 3, offset i."""
    decoded = events_decoder(Config())([wire.encode(DATUMS[i]) for i in order])
    table = decoded.table.append_column(PARTITION, pa.array([i % 3 for i in order], pa.int32()))
    return table.append_column(OFFSET, pa.array(order, pa.int64()))


def sort_key(i: int) -> tuple[Any, ...]:
    ms, eid = DATUMS[i].get("eventTimeMs"), DATUMS[i].get("eventID")
    return (ms is None, ms or 0, eid is None, eid or "", i % 3, i)


def shuffled(seed: int) -> list[int]:
    order = list(range(len(DATUMS)))
    random.Random(seed).shuffle(order)
    return order


def test_records_are_sorted_and_equal_the_ingested_cloudtrail_json() -> None:
    got = canonical_records(matched_table(shuffled(1)))
    expected = sorted(range(len(DATUMS)), key=sort_key)
    assert [json.loads(t) for t in got] == [from_avro(DATUMS[i]) for i in expected]


def test_records_are_canonical_json() -> None:
    for text in canonical_records(matched_table(list(range(len(DATUMS))))):
        json.loads(text, object_pairs_hook=_sorted_object)
        outside_strings = STRING.sub("", text.decode())
        assert not any(c.isspace() for c in outside_strings), text


STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _sorted_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert keys == sorted(keys)
    return dict(pairs)


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz", "out.json.gz"])
def test_any_input_order_gives_byte_identical_files(tmp_path: Path, name: str) -> None:
    first, second = tmp_path / "a" / name, tmp_path / "b" / name
    first.parent.mkdir()
    second.parent.mkdir()
    write_file(canonical_records(matched_table(shuffled(1))), first)
    write_file(canonical_records(matched_table(shuffled(2))), second)
    assert first.read_bytes() == second.read_bytes()
    assert not list(tmp_path.rglob("*.partial"))


def test_formats_hold_the_same_records() -> None:
    records = canonical_records(matched_table(list(range(len(DATUMS)))))
    outs = {}
    for fmt in ("jsonl", "jsonl.gz", "json.gz"):
        buf = io.BytesIO()
        write_records(records, fmt, buf)
        outs[fmt] = buf.getvalue()
    lines = [json.loads(line) for line in outs["jsonl"].splitlines()]
    assert lines == [json.loads(r) for r in records]
    assert gzip.decompress(outs["jsonl.gz"]) == outs["jsonl"]
    assert json.loads(gzip.decompress(outs["json.gz"])) == {"Records": lines}
    assert outs["jsonl.gz"][4:8] == b"\x00\x00\x00\x00"  # gzip MTIME field is 0


def test_an_empty_table_writes_an_empty_output() -> None:
    assert canonical_records(pa.table({})) == []
    buf = io.BytesIO()
    write_records([], "json.gz", buf)
    assert json.loads(gzip.decompress(buf.getvalue())) == {"Records": []}


@pytest.mark.parametrize("name", ["x.json", ".jsonl", ".parquet", "x.avro.gz", "x.txt"])
def test_unsupported_output_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unsupported output"):
        output_format(Path(name))


def test_stdout_is_json_lines() -> None:
    assert output_format(None) == "jsonl"
    assert output_format(Path("case/x.jsonl.gz")) == "jsonl.gz"
