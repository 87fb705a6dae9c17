"""The JSON mirror end to end on a real broker: the whole corpus produced as the producers write
it, mirrored by `consume mirror`, read back by a read_committed reader: every message is the
CloudTrail record that was ingested, with the source's key and partition and the documented
headers; alerts mirrored; a view registered before the start holds exactly its records; a
poison value dead-lettered."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from kit import assert_fully_committed, produce, read_all
from mirror_kit import (
    busiest_account,
    committed_json,
    coordinates_of,
    corpus,
    mirror_topics,
    produce_records,
    put_view,
    run_mirror,
)

from pipeline.events.partition import event_key
from pipeline.rules.alert import alert_id, alert_record, decode_alert, encode_alert
from pipeline.rules.model import AlertDraft

pytestmark = pytest.mark.integration


def alerts(count: int) -> list[bytes]:
    out = []
    for n in range(count):
        key = f"111122223333|user-{n}"
        draft = AlertDraft(
            alert_id=alert_id("root-login", key, 1_700_000_000_000), update=0, kind="rule",
            rule_id="root-login", key=key, window_start_ms=1_700_000_000_000, count=1,
            first_seen_ms=1_700_000_000_000, last_seen_ms=1_700_000_000_000,
            sample_event_ids=(f"ev-{n}",), title="Root login", severity="high",
            account="111122223333", region="eu-west-1")
        out.append(encode_alert(alert_record(draft, tags=(), rule_source="native:x@1",
                                             created_ms=1_700_000_001_000)))
    return out


def test_the_corpus_is_mirrored_as_cloudtrail_json_with_views_and_alerts(
        kafka: Any, make_topic: Any, unique: str) -> None:
    records = corpus()
    topics = mirror_topics(make_topic)
    account = busiest_account(records)
    put_view(kafka.bootstrap, topics, f"soc-{unique}", account)
    landed = produce_records(kafka.bootstrap, topics["events"], records)
    produce(kafka.bootstrap, topics["events"], [b"\xc3\x01 not an event"])
    alert_values = alerts(3)
    produce(kafka.bootstrap, topics["alerts"], alert_values)

    summary = run_mirror(kafka.bootstrap, topics, unique, commit_interval_ms=200)
    assert summary["consumed"] == len(records) + 1 + len(alert_values), summary
    assert summary["dead_lettered"] == 1, summary
    assert_fully_committed(kafka.bootstrap, f"mirror-{unique}", topics["events"], 3)

    mirrored = committed_json(kafka.bootstrap, topics["events_json"], len(records))
    assert len(mirrored) == len(records)
    assert {m.source for m in mirrored} == set(landed)
    for m in mirrored:
        record = records[landed[m.source]]
        assert m.value == record  # parsed JSON: same keys, types and values as ingested
        assert m.key == event_key(record) and m.partition == m.source[0]
        assert m.headers["sourcetype"] == b"aws:cloudtrail"
        assert m.headers["x-source-topic"] == topics["events"].encode()
        if isinstance(record.get("eventID"), str):
            assert m.headers["eventID"] == record["eventID"].encode()
        if isinstance(record.get("eventTime"), str):
            assert m.headers["eventTime"] == record["eventTime"].encode()
    assert {m.value.get("eventID") for m in mirrored} == {r.get("eventID") for r in records}

    expected = coordinates_of(account, records, landed)
    view = committed_json(kafka.bootstrap, topics["view"], len(expected))
    assert 0 < len(view) == len(expected) < len(records)
    assert {m.source for m in view} == expected
    assert all(m.value == records[landed[m.source]] for m in view)
    assert summary["views"] == {f"soc-{unique}": len(expected)}

    mirrored_alerts = read_all(kafka.bootstrap, topics["alerts_json"], expected=3)
    assert [orjson.loads(m.value() or b"") for m in mirrored_alerts] == \
        [decode_alert(v) for v in alert_values]
    dead = read_all(kafka.bootstrap, topics["dlq"], expected=1)
    assert [m.value() for m in dead] == [b"\xc3\x01 not an event"]
