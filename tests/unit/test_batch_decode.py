"""The native batch decoder: same rows as per-record ``wire.decode``, any writer mix, poison
isolated (pure; reads only the corpus in ../shared/corpus)."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from confluent_kafka.schema_registry import Schema

from pipeline.events import IngestMeta, batch, default_registry, to_avro, wire
from pipeline.events.batch import AvroBatchDecoder
from pipeline.events.batch_arrow import avro_arrow_type
from pipeline.events.confluent import ConfluentCodec, schema_text
from pipeline.events.errors import (
    BadMagicError,
    CorruptBodyError,
    TruncatedBodyError,
    UnknownSchemaError,
    WireFormatError,
)
from pipeline.lake.columns import _AVRO_TYPE

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "file.jsonl:1")
V1 = default_registry().get(version="1")
V1_1 = default_registry().get(version="1.1")


def corpus_datums() -> list[dict[str, Any]]:
    paths = sorted(CORPUS.glob("*/records.jsonl"))
    return [to_avro(json.loads(line), ingest=INGEST)
            for p in paths for line in p.read_text().splitlines() if line.strip()]


DATUMS = corpus_datums()
MESSAGES = [wire.encode(d) for d in DATUMS]


def edge_datums() -> list[dict[str, Any]]:
    """Maps, nulls, empty strings, unicode, big strings and longs at varint boundaries."""
    out = []
    for k, (text, n) in enumerate([("", 0), ("é€😀\u0000", -1), ("x" * 63, 63), ("y" * 64, -64),
                                   ("z" * 8192, 2**62), ("w" * (1 << 20), -(2**63)),
                                   ("ü" * 70_000, 2**63 - 1)]):
        d = to_avro({"eventVersion": text, "eventName": None, "userIdentity": {
            "type": text, "sessionContext": {"webIdFederationData": {
                "federatedProvider": text, "attributes": {text: text, "k": "", "ü": "v" * k}}}},
            "resources": [{"ARN": text}, {}] * k, "readOnly": k % 2 == 0}, ingest=INGEST)
        d["eventTimeMs"] = n
        out.append(d)
    return out


def expected(messages: list[bytes], reader: Any = None) -> list[Any]:
    rows = [wire.decode(m, reader=reader) for m in messages]
    return pa.array(rows, type=avro_arrow_type((reader or V1).raw)).to_pylist()


def rows_of(batch: Any) -> list[Any]:
    return batch.table.to_struct_array().combine_chunks().to_pylist()


def test_arrow_type_is_the_lake_avro_type() -> None:
    decoder = AvroBatchDecoder()
    assert decoder.arrow_type == _AVRO_TYPE
    assert decoder(MESSAGES[:3]).table.schema == pa.schema(list(_AVRO_TYPE))


def test_whole_corpus_decodes_like_fastavro_in_one_block() -> None:
    assert len(MESSAGES) == 1073
    decoder = AvroBatchDecoder()
    batch = decoder(MESSAGES)
    assert list(batch.rows) == list(range(len(MESSAGES))) and not batch.errors
    assert decoder.per_record == 0  # no record needed the per-record path
    want = pa.array([wire.decode(m) for m in MESSAGES], type=_AVRO_TYPE)
    assert batch.table.to_struct_array().combine_chunks().equals(want)


def test_edge_values() -> None:
    messages = [wire.encode(d) for d in edge_datums()]
    decoder = AvroBatchDecoder(min_block=1)
    batch = decoder(messages)
    assert not batch.errors and decoder.per_record == 0
    assert rows_of(batch) == expected(messages)


def test_empty_batch_and_all_bad() -> None:
    decoder = AvroBatchDecoder()
    assert decoder([]).table.schema == decoder.schema and decoder([]).table.num_rows == 0
    batch = decoder([None, b"\x01"])
    assert batch.table.num_rows == 0 and [i for i, _ in batch.errors] == [0, 1]


def test_mixed_writers_in_input_order() -> None:
    """v1 and v1.1 single-object messages and Confluent frames of both, interleaved."""
    codec = ConfluentCodec.for_topic("mock://batch-mixed", "audit")
    id11 = codec.client.register_schema("other-value", Schema(schema_text("1.1"), "AVRO"))
    values, want = [], []
    for k, d in enumerate(DATUMS[:300]):
        d11 = {**d, "labels": {"team": "a", "k": str(k)}}
        kind = k % 4
        if kind == 0:
            m = wire.encode(d)
        elif kind == 1:
            m = wire.encode(d11, V1_1)
        elif kind == 2:
            m = codec.encode(d)
        else:
            m = b"\x00" + struct.pack(">I", id11) + wire.encode(d11, V1_1)[10:]
        values.append(m)
        want.append(wire.decode(wire.encode(d), reader=V1))
    decoder = AvroBatchDecoder(confluent=codec)
    batch = decoder(values)
    assert list(batch.rows) == list(range(len(values))) and not batch.errors
    assert decoder.per_record == 0
    assert rows_of(batch) == pa.array(want, type=_AVRO_TYPE).to_pylist()


def test_reader_newer_than_writer_gets_defaults() -> None:
    decoder = AvroBatchDecoder(reader=V1_1)
    batch = decoder(MESSAGES[:50])
    assert decoder.per_record == 0
    assert rows_of(batch) == expected(MESSAGES[:50], V1_1)
    assert all(r["labels"] == [] for r in rows_of(batch))  # the default {} as an Arrow map


def _body_cut(m: bytes) -> bytes:
    return m[:-1]


POISON: list[tuple[str, Any, type[Exception]]] = [
    ("tombstone", lambda m: None, WireFormatError),
    ("empty", lambda m: b"", TruncatedBodyError),
    ("bad magic", lambda m: b"\xc3\x02" + m[2:], BadMagicError),
    ("json", lambda m: b'{"eventName": 1}', BadMagicError),
    ("unknown fingerprint", lambda m: m[:2] + bytes(8) + m[10:], UnknownSchemaError),
    ("truncated header", lambda m: m[:6], TruncatedBodyError),
    ("header only", lambda m: m[:10], TruncatedBodyError),
    ("truncated body", _body_cut, TruncatedBodyError),
    ("half a body", lambda m: m[:len(m) // 2], TruncatedBodyError),
    ("one trailing byte", lambda m: m + b"\x00", CorruptBodyError),
    ("trailing bytes", lambda m: m + b"\x02\x04ab", CorruptBodyError),
    ("garbage body", lambda m: m[:10] + bytes(range(255, 0, -3)), CorruptBodyError),
    ("confluent, no registry", lambda m: b"\x00\x00\x00\x00\x01" + m[10:], BadMagicError),
]


@pytest.mark.parametrize(("name", "spoil", "error"), POISON, ids=[p[0] for p in POISON])
def test_poison_is_isolated(name: str, spoil: Any, error: type[Exception]) -> None:
    good = MESSAGES[100:110]
    values: list[bytes | None] = [*good[:4], spoil(good[4]), *good[5:]]
    batch = AvroBatchDecoder(min_block=1)(values)
    assert [i for i, _ in batch.errors] == [4]
    assert type(batch.errors[0][1]) is error
    if values[4] is not None and name != "confluent, no registry":
        with pytest.raises(error):
            wire.decode(values[4])
    assert list(batch.rows) == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert rows_of(batch) == expected([m for m in values if m is not None and m != values[4]])


@pytest.mark.parametrize("spoil", [_body_cut, lambda m: m + b"\x00", lambda m: m[:-3],
                                   lambda m: m + m[10:14]])
def test_shifted_boundaries_are_caught(spoil: Any) -> None:
    """A body one byte short or long next to good bodies must not shift the good ones."""
    for k in range(0, 40, 7):
        values = [*MESSAGES[k:k + 3], spoil(MESSAGES[k + 3]), *MESSAGES[k + 4:k + 8]]
        batch = AvroBatchDecoder(min_block=1)(values)
        assert [i for i, _ in batch.errors] == [3]
        assert rows_of(batch) == expected([*MESSAGES[k:k + 3], *MESSAGES[k + 4:k + 8]])


def test_unknown_confluent_id_and_garbage_next_to_confluent_values() -> None:
    codec = ConfluentCodec.for_topic("mock://batch-poison", "audit")
    good = [codec.encode(d) for d in DATUMS[:6]]
    values = [good[0], b"\x00\x00\x00\x7f\xff" + good[1][5:], good[2], good[3][:-1], good[4],
              good[5][:5] + b"\x04" + bytes(300)]  # union index 2 of [null, string]
    batch = AvroBatchDecoder(confluent=codec, min_block=1)(values)
    assert [(i, type(e)) for i, e in batch.errors] == [
        (1, UnknownSchemaError), (3, TruncatedBodyError), (5, CorruptBodyError)]
    assert rows_of(batch) == expected([wire.encode(d) for d in (DATUMS[0], DATUMS[2], DATUMS[4])])


def _corrupt(rng: random.Random, m: bytes) -> bytes | None:
    kind = rng.randrange(7)
    cut = rng.randrange(len(m))
    if kind == 0:
        return m[:cut]
    if kind == 1:
        return m + rng.randbytes(rng.randrange(1, 4))
    if kind == 2:
        b = bytearray(m)
        b[cut] = rng.randrange(256)
        return bytes(b)
    if kind == 3:
        return m[:10] + rng.randbytes(rng.randrange(60))
    if kind == 4:
        return m[:cut] + m[cut + 1:]
    if kind == 5:
        return rng.randbytes(rng.randrange(12))
    return None


def test_random_corruption_agrees_with_per_record_decode() -> None:
    """Property: every value is in exactly one of rows/errors, and each one decodes (or fails,
    with the same error type) exactly as ``wire.decode`` decodes it alone."""
    rng = random.Random(20251130)
    for round_ in range(80):
        decoder = AvroBatchDecoder(min_block=1 if round_ % 2 else 32)
        start = rng.randrange(len(MESSAGES) - 200)
        values: list[bytes | None] = list(MESSAGES[start:start + rng.randrange(1, 200)])
        for _ in range(rng.randrange(1, 6)):
            k = rng.randrange(len(values))
            values[k] = _corrupt(rng, values[k] or MESSAGES[0])
        batch = decoder(values)
        assert len(batch.rows) + len(batch.errors) == len(values) == batch.table.num_rows + len(
            batch.errors)
        assert sorted([*batch.rows, *(i for i, _ in batch.errors)]) == list(range(len(values)))
        got = dict(zip(batch.rows, rows_of(batch), strict=True))
        errors = dict(batch.errors)
        decoded: dict[int, Any] = {}
        for i, v in enumerate(values):
            try:
                decoded[i] = wire.decode(v) if v is not None else None
            except WireFormatError as exc:
                assert type(errors.get(i)) is type(exc), (i, v, errors.get(i), exc)
        assert all(isinstance(errors[i], WireFormatError) for i, d in decoded.items() if d is None)
        ok = [i for i, d in decoded.items() if d is not None]
        assert [got[i] for i in ok] == pa.array([decoded[i] for i in ok], _AVRO_TYPE).to_pylist()


def test_a_large_batch_is_read_in_two_halves_with_poison_in_each() -> None:
    messages = MESSAGES * 6  # 6,438 values: over PARALLEL_MIN_ROWS, read as two blocks at once
    assert len(messages) >= batch.PARALLEL_MIN_ROWS
    bad = {17: messages[17][:-3], 5000: messages[5000] + b"\x00", 6400: b"\xc3\x01" + bytes(9)}
    values = [bad.get(i, m) for i, m in enumerate(messages)]
    decoder = AvroBatchDecoder()
    out = decoder(values)
    assert [i for i, _ in out.errors] == sorted(bad)
    assert list(out.rows) == [i for i in range(len(values)) if i not in bad]
    clean = decoder(messages)
    assert list(clean.rows) == list(range(len(messages))) and not clean.errors
    assert rows_of(clean) == expected(MESSAGES) * 6
    assert rows_of(out) == [r for i, r in enumerate(rows_of(clean)) if i not in bad]
