"""replay --out FILE.parquet / FILE.avro: deterministic bytes, read back as the lake and the
Avro schema have the records; every format through the hashing writer and PATH.partial."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import Config
from pipeline.daemon import events_decoder
from pipeline.events import wire
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.lake.columns import CLOUDTRAIL_SCHEMA, LAKE_SCHEMA, META_SCHEMA, to_table
from pipeline.replay.canonical import json_records, sorted_rows
from pipeline.replay.hot import OFFSET, PARTITION
from pipeline.replay.output import (
    AVRO_SYNC_MARKER,
    avro_schema,
    write_file,
    write_output,
)
from pipeline.replay.rate import RateLimiter

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "records.jsonl:1")
DATUMS = [to_avro(json.loads(line), ingest=INGEST) for p in sorted(CORPUS.glob("*/records.jsonl"))
          for line in p.read_text().splitlines() if line.strip()]
FORMATS = ["out.parquet", "out.avro", "out.jsonl", "out.jsonl.gz", "out.json.gz"]


def matched_table(seed: int | None = None) -> pa.Table:
    """The corpus as a replay's matched table (row i: datum i at partition i % 3, offset i),
    rows shuffled by ``seed``."""
    order = list(range(len(DATUMS)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    decoded = events_decoder(Config())([wire.encode(DATUMS[i]) for i in order])
    table = decoded.table.append_column(PARTITION, pa.array([i % 3 for i in order], pa.int32()))
    return table.append_column(OFFSET, pa.array(order, pa.int64()))


ORDERED = sorted_rows(matched_table())
ORDER = ORDERED.column(OFFSET).to_pylist()


def normalised(datum: dict[str, Any]) -> dict[str, Any]:
    """A corpus datum as an Avro reader of the output schema gives it back (defaults filled)."""
    schema = fastavro.parse_schema(avro_schema())
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, datum)
    buf.seek(0)
    read = fastavro.schemaless_reader(buf, schema, schema)
    assert isinstance(read, dict)
    return read


@pytest.mark.parametrize("name", FORMATS)
def test_the_same_rows_in_any_order_give_byte_identical_files(tmp_path: Path, name: str
                                                              ) -> None:
    first, second = tmp_path / "a" / name, tmp_path / "b" / name
    first.parent.mkdir()
    second.parent.mkdir()
    one = write_output(sorted_rows(matched_table(seed=1)), first)
    two = write_output(sorted_rows(matched_table(seed=2)), second)
    assert first.read_bytes() == second.read_bytes()
    assert one == two
    assert one.size_bytes == len(first.read_bytes())
    assert one.sha256 == hashlib.sha256(first.read_bytes()).hexdigest()
    assert not list(tmp_path.rglob("*.partial"))


_WRITE_IN_A_FRESH_PROCESS = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import test_replay_formats as t
from pipeline.replay.output import write_output
for name in ("out.parquet", "out.avro"):
    print(write_output(t.ORDERED, Path(sys.argv[2]) / name).sha256)
"""


def test_parquet_and_avro_bytes_do_not_depend_on_the_process(tmp_path: Path) -> None:
    """Two fresh interpreters with different hash seeds (set and dict orders differ: the
    parsed Avro schema of fastavro, for one, orders its keys by a set) write the same bytes
    as this one."""
    for seed in ("1", "2"):
        (tmp_path / seed).mkdir()
    runs = [subprocess.Popen([sys.executable, "-c", _WRITE_IN_A_FRESH_PROCESS,
                              str(Path(__file__).parent), str(tmp_path / seed)],
                             cwd=REPO, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed})
            for seed in ("1", "2")]
    outputs = [run.communicate(timeout=120)[0].split() for run in runs]
    here = [write_output(ORDERED, tmp_path / f"here.{ext}").sha256 for ext in ("parquet", "avro")]
    assert outputs == [here, here]


def test_parquet_holds_the_lake_columns_of_the_records_in_order(tmp_path: Path) -> None:
    path = tmp_path / "case.parquet"
    write_output(ORDERED, path)
    got = pq.read_table(path)
    assert got.schema.remove_metadata() == LAKE_SCHEMA
    expected = to_table([DATUMS[i] for i in ORDER], partition=0, offsets=ORDER,
                        timestamps_ms=[0] * len(ORDER))
    # to_table reads datums in the v1 shape, which has no labels: _labels is not compared.
    for name in [*CLOUDTRAIL_SCHEMA.names, *META_SCHEMA.names]:
        if name != "_labels":
            assert got[name].combine_chunks() == expected[name].combine_chunks(), name
    assert got[OFFSET].to_pylist() == ORDER
    assert got[PARTITION].to_pylist() == [i % 3 for i in ORDER]
    assert got["_timestamp_ms"].null_count == len(ORDER)
    by_duckdb = duckdb.sql(f"SELECT useridentity.arn, eventid FROM read_parquet('{path}')")
    assert by_duckdb is not None
    assert by_duckdb.fetchall() == [
        ((DATUMS[i].get("userIdentity") or {}).get("arn"), DATUMS[i].get("eventID"))
        for i in ORDER]


def test_avro_holds_the_records_in_the_newest_schema_in_order(tmp_path: Path) -> None:
    path = tmp_path / "case.avro"
    write_output(ORDERED, path)
    with path.open("rb") as fh:
        reader = fastavro.reader(fh)
        assert json.loads(reader.metadata["avro.schema"]) == avro_schema()
        assert avro_schema()["name"].endswith("ApiCallEvent")
        records = [r for r in reader if isinstance(r, dict)]
    assert [r["eventID"] for r in records] == [DATUMS[i].get("eventID") for i in ORDER]
    assert records == [normalised(DATUMS[i]) for i in ORDER]
    assert path.read_bytes()[-16:] == AVRO_SYNC_MARKER


@pytest.mark.parametrize("name", FORMATS)
def test_a_rate_paces_the_writing_without_changing_the_bytes(tmp_path: Path, name: str
                                                             ) -> None:
    clock_s = [0.0]

    def sleep(seconds: float) -> None:
        clock_s[0] += seconds

    limiter = RateLimiter(100, clock=lambda: clock_s[0], sleep=sleep)
    paced = write_output(ORDERED, tmp_path / f"paced.{name}", limiter=limiter)
    plain = write_output(ORDERED, tmp_path / f"plain.{name}")
    assert paced.sha256 == plain.sha256
    # At 100/s with one second of burst, every record but the first 100 waited its turn.
    assert clock_s[0] == pytest.approx((len(ORDER) - 100) / 100, abs=1.0)


@pytest.mark.parametrize("name", FORMATS)
def test_no_rows_give_a_valid_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write_output(pa.table({}), path)
    if name.endswith(".parquet"):
        assert pq.read_table(path).num_rows == 0
    elif name.endswith(".avro"):
        with path.open("rb") as fh:
            assert list(fastavro.reader(fh)) == []
    else:
        assert write_file([], tmp_path / f"again.{name}").size_bytes == path.stat().st_size


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz", "out.json.gz"])
def test_json_formats_from_the_table_equal_those_from_the_records(tmp_path: Path,
                                                                  name: str) -> None:
    from_table = write_output(ORDERED, tmp_path / f"t.{name}")
    from_records = write_file(json_records(ORDERED), tmp_path / f"r.{name}")
    assert from_table.sha256 == from_records.sha256


@pytest.mark.parametrize("name", ["out.parquet", "out.avro"])
def test_write_file_needs_the_rows_for_parquet_and_avro(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="from the rows"):
        write_file([b"{}"], tmp_path / name)
    assert not list(tmp_path.iterdir())
