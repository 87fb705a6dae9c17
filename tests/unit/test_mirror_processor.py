"""The mirror's processor on real decoded batches: the whole corpus encoded as producers do,
decoded natively, mirrored to JSON records with the source's key and the documented headers;
views routed from the same pass; alerts mirrored; poison rows isolated; views swapped only
between batches."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from consumers.mirror.alerts import decode_alerts
from consumers.mirror.live_views import LiveViews
from consumers.mirror.processor import MirrorProcessor, MirrorTopics
from pipeline.batches import COORDINATE_SCHEMA, process_isolating, with_coordinates
from pipeline.config import Config
from pipeline.daemon import events_decoder
from pipeline.events.mapping import IngestMeta, to_avro
from pipeline.events.partition import event_key
from pipeline.events.wire import encode
from pipeline.model import KafkaBatch, KafkaRecord
from pipeline.rules.alert import alert_id, alert_record, decode_alert, encode_alert
from pipeline.rules.model import AlertDraft
from pipeline.siem.model import Subscription, View, ViewFilter, view_topic

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "cloudtrail"
TOPICS = MirrorTopics(events_json="out.events.json", alerts_json="out.alerts.json")
SOURCE = "audit.events.v1"


def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(CORPUS.glob("*/records.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


def coordinates(keys: Sequence[bytes | None], topic: str, partition: int = 2,
                first_offset: int = 100) -> pa.Table:
    n = len(keys)
    return pa.Table.from_arrays([
        pa.array([topic] * n), pa.array([partition] * n, pa.int32()),
        pa.array(range(first_offset, first_offset + n), pa.int64()),
        pa.array([0] * n, pa.int64()), pa.array(keys, pa.binary()),
        pa.array([1] * n, pa.int32())], schema=COORDINATE_SCHEMA)


def events_table(records: Sequence[dict[str, Any]]) -> pa.Table:
    """``records`` encoded as the producers write them, decoded by the daemon's decoder."""
    values = [encode(to_avro(r, ingest=IngestMeta(1, "test", "unit"))) for r in records]
    batch = events_decoder(Config())(values)
    assert not batch.errors and list(batch.rows) == list(range(len(records)))
    return with_coordinates(batch.table, coordinates([event_key(r) for r in records], SOURCE))


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    found = corpus()
    assert len(found) > 1000, f"the corpus at {CORPUS} is missing"
    return found


@pytest.fixture(scope="module")
def table(records: list[dict[str, Any]]) -> pa.Table:
    return events_table(records)


def static_views(subs: dict[str, Subscription],
                 missing: Collection[str] = ()) -> LiveViews:
    """LiveViews over a fixed registry (not started: tests call ``refresh``)."""
    def existing(names: Collection[str]) -> set[str]:
        return set(names) - set(missing)
    return LiveViews(lambda: subs, existing, refresh_ms=1000, first_timeout_s=0.1)


def subscription(name: str, account: str) -> Subscription:
    view = View(filter=ViewFilter(accounts=[account]), topic=view_topic(name))
    return Subscription(name=name, topics=[view.topic], auth="mtls", view=view, created_ms=1)


def flat(batches: list[KafkaBatch]) -> list[KafkaRecord]:
    """The records of the processor's output batches, in order."""
    out = []
    for b in batches:
        assert len(b.values) == len(b.keys) == len(b.headers or ())
        out += [KafkaRecord(b.topic, v, k, tuple(h))
                for v, k, h in zip(b.values, b.keys, b.headers or (), strict=True)]
    return out


def by_topic(out: list[KafkaBatch], topic: str) -> list[KafkaRecord]:
    return [r for r in flat(out) if r.topic == topic]


def test_every_row_is_mirrored_as_its_cloudtrail_record(records: list[dict[str, Any]],
                                                        table: pa.Table) -> None:
    out = flat(MirrorProcessor(TOPICS, None).process_batch(table))
    assert {r.topic for r in out} == {TOPICS.events_json}
    assert len(out) == len(records)
    for offset, (record, rec) in enumerate(zip(records, out, strict=True), start=100):
        assert json.loads(rec.value or b"") == record
        assert rec.key == event_key(record)
        headers = dict(rec.headers)
        assert len(headers) == len(rec.headers)  # no header twice
        assert headers["sourcetype"] == b"aws:cloudtrail"
        assert headers["x-source-topic"] == SOURCE.encode()
        assert headers["x-source-partition"] == b"2"
        assert headers["x-source-offset"] == str(offset).encode()
        for name in ("eventID", "eventTime"):
            if isinstance(record.get(name), str):
                assert headers[name] == record[name].encode()
            else:
                assert name not in headers


def test_a_view_gets_exactly_its_accounts_rows_from_the_same_pass(
        records: list[dict[str, Any]], table: pa.Table) -> None:
    accounts = sorted({event_key(r).split(b"|")[0].decode() for r in records} - {""})
    first, second = accounts[0], accounts[-1]
    views = static_views({"soc": subscription("soc", first), "noc": subscription("noc", second)})
    views.refresh()
    processor = MirrorProcessor(TOPICS, views)
    out = processor.process_batch(table)
    mirrored = {r.headers: r for r in by_topic(out, TOPICS.events_json)}
    assert len(mirrored) == len(records)
    for name, account in (("soc", first), ("noc", second)):
        got = by_topic(out, view_topic(name))
        prefix = f"{account}|".encode()
        expected = [r for r in mirrored.values() if (r.key or b"").startswith(prefix)]
        assert got and len(got) == len(expected) < len(records)
        for rec in got:  # a filter-only view: the same record, key and headers as the mirror
            source = mirrored[rec.headers]
            assert rec.key == source.key
            assert orjson.loads(rec.value or b"") == orjson.loads(source.value or b"")
        assert processor.stats()["views"][name] == len(expected)


def test_views_change_only_between_batches_and_missing_topics_are_skipped(
        table: pa.Table) -> None:
    subs: dict[str, Subscription] = {}
    missing = {view_topic("late")}
    views = LiveViews(lambda: subs, lambda names: set(names) - missing, refresh_ms=1000,
                      first_timeout_s=0.1)
    views.refresh()
    processor = MirrorProcessor(TOPICS, views)
    assert processor.process_batch(table)  # the first batch takes the first set: no views
    account = (table["_key"][0].as_py() or b"").split(b"|")[0].decode()
    subs["late"] = subscription("late", account)
    views.refresh()  # its topic does not exist yet: not served
    assert views.take() is None
    missing.clear()
    views.refresh()  # now it does, but only the next tick serves it
    assert by_topic(processor.process_batch(table), view_topic("late")) == []
    processor.tick(0)
    assert by_topic(processor.process_batch(table), view_topic("late"))
    del subs["late"]  # revoked
    views.refresh()
    processor.tick(0)
    assert by_topic(processor.process_batch(table), view_topic("late")) == []


def test_a_failing_registry_keeps_the_served_views(table: pa.Table) -> None:
    account = (table["_key"][0].as_py() or b"").split(b"|")[0].decode()
    state = {"fail": False}

    def load() -> dict[str, Subscription]:
        if state["fail"]:
            raise ValueError("registry unreachable")
        return {"soc": subscription("soc", account)}

    views = LiveViews(load, set, refresh_ms=1000)
    views.refresh()
    state["fail"] = True
    views.refresh()
    assert views.refresh_failures == 1
    processor = MirrorProcessor(TOPICS, views)
    assert by_topic(processor.process_batch(table), view_topic("soc"))


def test_a_row_the_encoder_rejects_is_isolated_and_counts_nothing(
        records: list[dict[str, Any]]) -> None:
    poisoned = events_table(records[:8])
    bad = poisoned.column_names.index("unmodelled")
    column = poisoned["unmodelled"].to_pylist()
    column[5] = "{not json"
    poisoned = poisoned.set_column(bad, "unmodelled", pa.array(column, pa.string()))
    processor = MirrorProcessor(TOPICS, None)
    outputs, failed = process_isolating(processor.process_batch, poisoned)
    assert [row for row, _ in failed] == [5]
    assert [dict(r.headers)["x-source-offset"] for r in flat(outputs)] == \
        [str(100 + i).encode() for i in range(8) if i != 5]
    assert processor.stats()["mirrored"] == 7


def alert(n: int) -> bytes:
    key = f"111122223333|user-{n}"
    draft = AlertDraft(
        alert_id=alert_id("root-login", key, 1_700_000_000_000), update=n % 2, kind="rule",
        rule_id="root-login", key=key, window_start_ms=1_700_000_000_000, count=n + 1,
        first_seen_ms=1_700_000_000_000, last_seen_ms=1_700_000_000_000 + n,
        sample_event_ids=(f"ev-{n}",), title=f"Root login \u00e9 | {n}", severity="high",
        account="111122223333", region="eu-west-1", context={"why": "no \"MFA\""})
    return encode_alert(alert_record(draft, tags=("attack.t1078",), rule_source="native:x@1",
                                     created_ms=1_700_000_001_000))


def test_alerts_are_mirrored_as_json_and_poison_alerts_are_reported() -> None:
    values: list[bytes | None] = [alert(0), b"\xc3\x01garbage", alert(1), None, alert(2)]
    decoded = decode_alerts(values)
    assert list(decoded.rows) == [0, 2, 4]
    assert [i for i, _ in decoded.errors] == [1, 3]
    keys = [f"id-{i}".encode() for i in decoded.rows]
    table = with_coordinates(decoded.table, coordinates(keys, "audit.alerts.v1", 0, 7))
    processor = MirrorProcessor(TOPICS, None)
    out = flat(processor.process_batch(table))
    assert [r.topic for r in out] == [TOPICS.alerts_json] * 3
    for rec, index, key in zip(out, decoded.rows, keys, strict=True):
        assert orjson.loads(rec.value or b"") == decode_alert(values[index] or b"")
        assert rec.key == key
        assert dict(rec.headers)["x-source-topic"] == b"audit.alerts.v1"
    assert [dict(r.headers)["x-source-offset"] for r in out] == [b"7", b"8", b"9"]
    assert processor.stats()["alerts_mirrored"] == 3


def test_an_alerts_batch_without_alert_mirroring_is_an_error() -> None:
    decoded = decode_alerts([alert(0)])
    table = with_coordinates(decoded.table, coordinates([b"k"], "audit.alerts.v1"))
    processor = MirrorProcessor(MirrorTopics(events_json="x", alerts_json=None), None)
    with pytest.raises(ValueError, match="not mirrored"):
        processor.process_batch(table)
