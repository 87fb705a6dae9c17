"""Avro batch table -> CloudTrail JSON (pipeline.mirror.json) is the lossless inverse of the
ingest mapping: every corpus record comes back equal, through the real batch decoder."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from test_events_mapping import assert_same

from pipeline.config import GeneratorConfig
from pipeline.events import IngestMeta, InvalidDatum, default_registry, from_avro, to_avro, wire
from pipeline.events.batch import AvroBatchDecoder
from pipeline.mirror import objects
from pipeline.mirror.json import cloudtrail_json
from producers.generator.source import make_generator

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
INGEST = IngestMeta(1_764_201_600_000, "test", "unit-1", "file.jsonl:1")
V1_1 = default_registry().get(version="1.1")


def corpus_records() -> list[dict[str, Any]]:
    records = []
    for path in sorted(CORPUS.glob("*/records.jsonl")):
        records += [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    return records


def decode(messages: list[bytes]) -> pa.Table:
    """The batch table the mirror gets (reader: the newest ApiCallEvent, as events_decoder)."""
    out = AvroBatchDecoder(reader=default_registry().newest())(messages)
    assert not out.errors
    return out.table


def table_of(records: list[dict[str, Any]]) -> pa.Table:
    return decode([wire.encode(to_avro(r, ingest=INGEST)) for r in records])


def assert_records(texts: list[bytes], records: list[dict[str, Any]]) -> None:
    assert len(texts) == len(records)
    for i, (text, record) in enumerate(zip(texts, records, strict=True)):
        assert isinstance(text, bytes)
        assert_same(json.loads(text), record, f"row {i}")


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, Any]]:
    records = corpus_records()
    assert len(records) >= 1073, f"expected the shared corpus at {CORPUS}"
    return records


def test_every_corpus_record_comes_back_as_ingested(corpus: list[dict[str, Any]]) -> None:
    table = table_of(corpus)
    assert table.num_rows == len(corpus)
    assert_records(cloudtrail_json(table), corpus)


@pytest.mark.parametrize(("min_group_rows", "max_bits"), [(1, 62), (1, 3), (10**9, 62)])
def test_every_row_exact_by_presence_groups_or_by_text(
        corpus: list[dict[str, Any]], min_group_rows: int, max_bits: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways of leaving out null members give the same records: every presence group
    encoded on its own (1), also when most sometimes-null members get no bit (3), and no group
    at all (all rows by text)."""
    monkeypatch.setattr(objects, "MIN_GROUP_ROWS", min_group_rows)
    monkeypatch.setattr(objects, "_MAX_BITS", max_bits)
    records = corpus + adversarial_records()
    assert_records(cloudtrail_json(table_of(records)), records)


def test_generated_events_mostly_take_the_presence_groups(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Generated traffic (few event shapes, as real traffic): most rows are encoded by presence
    group, and every row comes back as generated."""
    config = GeneratorConfig(accounts=5, regions=3, rate_per_s=200.0)
    gen = make_generator(config, 1_764_000_000_000)
    records = list(gen.records(4000))
    by_group: list[int] = []
    encode_all = objects._encode_all

    def spy(jobs: Any) -> Any:
        by_group.extend(frame.height for frame, held, _ in jobs if held is not None)
        return encode_all(jobs)

    monkeypatch.setattr(objects, "_encode_all", spy)
    assert_records(cloudtrail_json(table_of(records)), records)
    assert sum(by_group) > len(records) // 2 and len(by_group) > 2


def test_small_batches_and_sliced_and_chunked_tables(corpus: list[dict[str, Any]]) -> None:
    """Batches of any size, a table slice (array offsets) and a many-chunk table give the same
    records; the runner hands over all three shapes."""
    table = table_of(corpus)
    for lo, hi in ((0, 1), (5, 37), (100, 612), (1000, len(corpus))):
        assert_records(cloudtrail_json(table.slice(lo, hi - lo)), corpus[lo:hi])
    chunked = pa.concat_tables([table.slice(k, 97) for k in range(0, table.num_rows, 97)])
    assert chunked.column("userIdentity").num_chunks > 1
    assert_records(cloudtrail_json(chunked), corpus)


ADVERSARIAL = [
    'quote " and backslash \\ and both \\"', "control \x00\x01\x08\x0b\x1f\x7f end",
    "\t\n\r\b\f", "line sep \u2028 para sep \u2029", "non-ASCII héllo ✓ 𝄞 中文 \ufeff",
    '","x":null,"y":"', '{"a":null}', ':null', "</script>", "", " ", "null", "true", "1e400",
]


def adversarial_records() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, s in enumerate(ADVERSARIAL):
        out.append({
            "eventVersion": "1.08", "eventID": f"adv-{i}", "eventName": s, "userAgent": s,
            "userIdentity": {"type": s, "userName": s, "sessionContext": {
                "webIdFederationData": {"federatedProvider": s, "attributes": {s: s, "k": s}},
                "attributes": {"mfaAuthenticated": "false"}}},
            "resources": [{"ARN": s, "type": "t"}, {"accountId": s}],
            "requestParameters": {s: [s, None, 1, 1.5, -0.0, 10**30, True, {"n": None}]},
            "responseElements": None, "readOnly": i % 2 == 0, "managementEvent": False,
            "additionalEventData": s,
        })
    return out


def test_adversarial_strings_are_escaped_correctly() -> None:
    records = adversarial_records()
    assert_records(cloudtrail_json(table_of(records)), records)


def test_unmodelled_edge_shapes() -> None:
    """Empty objects, values of the wrong type, unknown keys at every depth, JSON members whose
    text is null/NaN/a big number/a lone surrogate (kept exactly as ingested)."""
    records: list[dict[str, Any]] = [
        {"userIdentity": {}, "tlsDetails": {}, "resources": [], "eventID": "e0"},
        {"userIdentity": {"sessionContext": {"sessionIssuer": {}}}, "readOnly": "true"},
        {"@timestamp": 1, "userIdentity": {"extra": {"deep": [None]}, "type": 7}},
        {"requestParameters": float("nan"), "responseElements": 10**40,
         "serviceEventDetails": "\ud800", "eventContext": None},
        {"userIdentity": {"sessionContext": {"webIdFederationData": {"attributes": {"n": 1}}}}},
        {"resources": [{"ARN": "a", "junk": True}], "eventTime": None},
        {},
    ]
    assert_records(cloudtrail_json(table_of(records)), records)  # NaN compares as NaN


@pytest.mark.parametrize("records", [
    [{"requestParameters": {"a": None}}], [{}], [{}, {"eventContext": 1}],
    [{"resources": [{"ARN": None}]}] * 300, [{"resources": [{"ARN": "a", "type": None}]}] * 300,
    [{"userIdentity": {"sessionContext": {}}}] * 200 + [{"userIdentity": None}] * 200,
    [{"userIdentity": {"type": "t"}, "readOnly": True}] * 200 + [{"readOnly": False}] * 150,
], ids=["members-only", "empty", "empty-and-member", "null-arn", "null-type",
        "only-empty-objects", "two-groups"])
def test_batches_of_one_shape(records: list[dict[str, Any]]) -> None:
    """Batches whose rows (nearly) all look alike: whole groups of empty objects, of nothing
    but JSON members, of arrays whose records hold nulls."""
    assert_records(cloudtrail_json(table_of(records)), records)


def test_random_shapes_by_any_grouping(corpus: list[dict[str, Any]],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Corpus records with random members (and members of objects) deleted, repeated and
    shuffled into batches, under random group sizes and bit budgets (a fixed seed)."""
    rng = random.Random(5)

    def mutated(record: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(record)
        for key in list(out):
            if rng.random() < 0.3:
                del out[key]
            elif isinstance(out[key], dict):
                for inner in [k for k in out[key] if rng.random() < 0.2]:
                    del out[key][inner]
        return out

    for _ in range(12):
        monkeypatch.setattr(objects, "MIN_GROUP_ROWS", rng.choice([1, 2, 5, 50, 128]))
        monkeypatch.setattr(objects, "_MAX_BITS", rng.choice([1, 3, 10, 62]))
        batch = [mutated(r) for r in rng.sample(corpus, rng.randint(1, 40))
                 for _ in range(rng.randint(1, 8))]
        rng.shuffle(batch)
        assert_records(cloudtrail_json(table_of(batch)), batch)


def test_fast_and_fallback_rows_keep_row_order(corpus: list[dict[str, Any]]) -> None:
    """Rows needing the Python path (an unmodelled residual) interleaved with rows that do
    not: every text stays at its row."""
    plain = [r for r in corpus if to_avro(r, ingest=INGEST)["unmodelled"] is None][:60]
    messy = [r for r in corpus if to_avro(r, ingest=INGEST)["unmodelled"] is not None][:60]
    assert len(plain) == len(messy) == 60
    mixed = [r for pair in zip(plain, messy, strict=True) for r in pair]
    mixed = mixed[:7] + messy[:5] + mixed[7:] + plain[:9]
    assert_records(cloudtrail_json(table_of(mixed)), mixed)


def test_v1_1_writer_gives_the_same_cloudtrail_json(corpus: list[dict[str, Any]]) -> None:
    """v1.1 datums carry operator labels (meta, not CloudTrail): the same records come out."""
    records = corpus[::5]
    messages = []
    for i, record in enumerate(records):
        datum = to_avro(record, ingest=INGEST)
        datum["labels"] = {"team": "sec", "n": str(i)}
        messages.append(wire.encode(datum, V1_1) if i % 2 else wire.encode(datum))
    table = decode(messages)
    assert "labels" in table.column_names or "_labels" in table.column_names
    assert_records(cloudtrail_json(table), records)


def test_coordinate_and_meta_columns_never_appear() -> None:
    table = table_of([{"eventID": "e1", "readOnly": False}])
    table = table.append_column("_key", pa.array([b"1|r"])).append_column(
        "_offset", pa.array([7], pa.int64()))
    (text,) = cloudtrail_json(table)
    assert json.loads(text) == {"eventID": "e1", "readOnly": False}


def test_empty_table() -> None:
    assert cloudtrail_json(table_of([{"eventID": "x"}]).slice(0, 0)) == []


def bad_message(**changes: Any) -> bytes:
    datum = to_avro({"eventID": "bad", "requestParameters": {"a": 1}}, ingest=INGEST)
    datum.update(changes)
    return wire.encode(datum)


@pytest.mark.parametrize("changes", [
    {"requestParameters": "{not json"}, {"responseElements": "[1,]"},
    {"eventContext": ""}, {"unmodelled": "[1]"}, {"unmodelled": "{"},
    {"unmodelled": '{"eventID": "twice"}'}, {"unmodelled": '{"requestParameters": 2}'},
])
def test_a_bad_row_raises_invalid_datum_like_from_avro(changes: dict[str, Any]) -> None:
    good = wire.encode(to_avro({"eventID": "good"}, ingest=INGEST))
    message = bad_message(**changes)
    with pytest.raises(InvalidDatum):
        from_avro(wire.decode(message))
    with pytest.raises(InvalidDatum):
        cloudtrail_json(decode([good, message, good]))
    assert json.loads(cloudtrail_json(decode([good]))[0]) == {"eventID": "good"}
