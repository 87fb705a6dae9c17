"""The compiled Avro writer writes exactly what fastavro writes, and rejects what does not fit."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import fastavro
import pytest

from pipeline.events import (
    IngestMeta,
    InvalidDatum,
    default_registry,
    encode,
    from_avro,
    to_avro,
)
from pipeline.events.avro_writer import Unsupported, compile_writer
from pipeline.events.schemas import API_CALL_EVENT, SchemaEntry
from pipeline.events.wire import HEADER_LEN, MAGIC, _body_writer

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "file.jsonl:1")
ENTRIES = [e for e in default_registry().entries() if e.name == API_CALL_EVENT]


def fastavro_body(schema: Any, datum: Any) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema, {}), datum)
    return buf.getvalue()


def corpus() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(CORPUS.glob("*/records.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            out.append((f"{path.parent.name}:{number}", json.loads(line)))
    return out


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"v{e.version}")
def test_every_corpus_record_is_written_as_fastavro_writes_it(entry: SchemaEntry) -> None:
    write = compile_writer(entry.raw)
    records = corpus()
    assert len(records) >= 1000
    for where, record in records:
        datum = to_avro(record, ingest=INGEST)
        body = write(datum)
        assert body == fastavro_body(entry.raw, datum), where
        buf = io.BytesIO(body)  # and fastavro's reader gets the record back, losslessly
        back = fastavro.schemaless_reader(buf, entry.parsed)
        assert buf.tell() == len(body), where
        assert from_avro(back) == record, where
        assert back["ingest"] == datum["ingest"], where


def test_encode_uses_the_compiled_writer_and_keeps_the_framing() -> None:
    entry = default_registry().get()
    datum = to_avro(corpus()[0][1], ingest=INGEST)
    message = encode(datum)
    assert message[:HEADER_LEN] == MAGIC + entry.fingerprint
    assert message[HEADER_LEN:] == fastavro_body(entry.raw, datum)
    assert compile_writer(entry.raw)(datum, b"prefix") == b"prefix" + message[HEADER_LEN:]


PRIMITIVES = {"type": "record", "name": "P", "fields": [
    {"name": "l", "type": "long"},
    {"name": "i", "type": "int"},
    {"name": "s", "type": "string"},
    {"name": "b", "type": "boolean"},
    {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}},
    {"name": "m", "type": {"type": "map", "values": "string"}, "default": {}},
    {"name": "a", "type": {"type": "array", "items": "long"}},
    {"name": "n", "type": ["null", "E"], "default": None},
    {"name": "d", "type": "string", "default": "dflt"},
]}


@pytest.mark.parametrize("n", [0, 1, -1, 63, 64, -64, -65, 127, 128, 2047, 2048, 4095, 4096,
                               1_764_201_600_000, -1_764_201_600_000, 2**31 - 1, -(2**31),
                               2**63 - 1, -(2**63)])
def test_longs_match_fastavro(n: int) -> None:
    datum = {"l": n, "i": max(min(n, 2**31 - 1), -(2**31)), "s": "", "b": True, "e": "A",
             "a": [n, -n if n > -(2**63) else 0]}
    assert compile_writer(PRIMITIVES)(datum) == fastavro_body(PRIMITIVES, datum)


@pytest.mark.parametrize("text", ["", "a", "é", "日本語", "😀", "x" * 63, "x" * 64, "é" * 2047,
                                  "é" * 2048, "x" * 4095, "x" * 4096, "x" * 100_000, "\x00"])
def test_strings_match_fastavro(text: str) -> None:
    datum = {"l": 0, "i": 0, "s": text, "b": False, "e": "C", "m": {text: text, "k": "v"},
             "a": [], "n": "B", "d": text}
    assert compile_writer(PRIMITIVES)(datum) == fastavro_body(PRIMITIVES, datum)


def test_missing_fields_take_their_defaults_as_in_fastavro() -> None:
    datum = {"l": 1, "i": 2, "s": "s", "b": True, "e": "B", "a": [1]}  # no m, n, d
    assert compile_writer(PRIMITIVES)(datum) == fastavro_body(PRIMITIVES, datum)
    v1_1 = default_registry().get(version="1.1")  # "labels" (map, default {}) not in the datum
    ev = to_avro({"eventName": "X"}, ingest=INGEST)
    assert compile_writer(v1_1.raw)(ev) == fastavro_body(v1_1.raw, ev)


GOOD = {"l": 1, "i": 2, "s": "s", "b": True, "e": "B", "a": [1]}


@pytest.mark.parametrize(("field", "bad"), [
    ("l", "1"), ("l", 1.0), ("l", True), ("l", 2**63), ("l", -(2**63) - 1), ("l", None),
    ("i", 2**31), ("i", -(2**31) - 1),
    ("s", b"bytes"), ("s", 1), ("s", None), ("s", "\ud800"),  # lone surrogate: not UTF-8
    ("b", "true"), ("b", 1), ("b", None),
    ("e", "D"), ("e", None), ("e", ["A"]),
    ("m", {"k": 1}), ("m", {1: "v"}), ("m", ["k"]),
    ("a", (1,)), ("a", ["1"]), ("a", None),
    ("n", "D"), ("n", 1),
])
def test_values_that_do_not_fit_are_rejected(field: str, bad: Any) -> None:
    datum = {**GOOD, field: bad}
    with pytest.raises((TypeError, ValueError)):
        compile_writer(PRIMITIVES)(datum)


def test_a_record_that_is_not_a_mapping_is_rejected() -> None:
    with pytest.raises(TypeError):
        compile_writer(PRIMITIVES)(["not", "a", "record"])


def test_encode_turns_misfits_into_invalid_datum() -> None:
    datum = to_avro({"eventName": "X", "readOnly": True}, ingest=INGEST)
    for field, bad in [("readOnly", "true"), ("eventName", 1), ("userIdentity", "root"),
                       ("resources", {"ARN": "a"}), ("eventTimeStatus", "LATER"),
                       ("ingest", None), ("eventTimeMs", "0")]:
        with pytest.raises(InvalidDatum):
            encode({**datum, field: bad})


@pytest.mark.parametrize("schema", [
    {"type": "record", "name": "U", "fields": [{"name": "u", "type": ["string", "long"]}]},
    {"type": "record", "name": "U", "fields": [{"name": "u", "type": ["long", "null"]}]},
    {"type": "record", "name": "U", "fields": [{"name": "u", "type": "double"}]},
    {"type": "record", "name": "U", "fields": [{"name": "u", "type": "bytes"}]},
    {"type": "record", "name": "U", "fields": [
        {"name": "u", "type": {"type": "fixed", "name": "F", "size": 4}}]},
    {"type": "record", "name": "U", "fields": [
        {"name": "u", "type": {"type": "long", "logicalType": "timestamp-millis"}}]},
    {"type": "record", "name": "U", "fields": [{"name": "u", "type": "Undefined"}]},
    {"type": "record", "name": "U", "fields": [{"name": "u", "type": "long", "default": 1.5}]},
])
def test_unsupported_schemas_fail_at_compile_time(schema: dict[str, Any]) -> None:
    with pytest.raises(Unsupported):
        compile_writer(schema)


def test_wire_falls_back_to_fastavro_for_a_schema_it_cannot_compile() -> None:
    raw = {"type": "record", "name": "W", "fields": [{"name": "x", "type": "double"}]}
    entry = SchemaEntry("W", "1", Path("W.v1.avsc"), b"\x01" * 8, "", raw,
                        fastavro.parse_schema(raw, {}))
    assert _body_writer(entry)({"x": 1.5}, b"p") == b"p" + fastavro_body(raw, {"x": 1.5})
