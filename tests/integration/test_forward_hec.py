"""The HEC forwarder daemon against a local HEC-compatible stand-in (not Splunk; see
hec_stand_in.py): events batched several per request with the token and a channel; the
group's offsets are not committed while the acknowledgements are held (timed-out batches are
sent again), and advance once they are released; undecodable values are dead-lettered."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hec_stand_in import HecStandIn
from kit import committed, end_offsets, produce, read_all
from syslog_receivers import forwarder, wait_until

from pipeline.events.mapping import parse_event_time

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "cloudtrail"


def test_batches_acks_and_no_commit_before_the_ack(kafka: Any, make_topic: Callable[..., str],
                                                   unique: str) -> None:
    topic, dlq = make_topic("json", 3), make_topic("dlq", 1)
    lines = (CORPUS / "panther-analysis-tests" / "records.jsonl").read_text().splitlines()
    records = [{**json.loads(line), "eventID": f"{n}-{unique}"}
               for n, line in enumerate(lines[:60])]
    for part in range(3):
        produce(kafka.bootstrap, topic, [json.dumps(r).encode() for r in records[part::3]],
                key=f"12345678901{part}|eu-west-1".encode())
    produce(kafka.bootstrap, topic, [b"not json"], key=b"123456789010|eu-west-1")
    stand = HecStandIn(token=f"tok-{unique}").start()
    stand.hold_acks()
    group = f"fwd-hec-{unique}"
    ids = {r["eventID"] for r in records}

    def times_seen() -> int:
        seen = [e["event"]["eventID"] for e in stand.events()]
        return min(seen.count(i) for i in ids)

    try:
        with forwarder("forward-hec", kafka.bootstrap, **{
                "forward_hec.url": stand.url, "forward_hec.token": f"tok-{unique}",
                "forward_hec.topic": topic, "forward_hec.group": group,
                "forward_hec.batch_max_events": 8, "forward_hec.ack_timeout_ms": 1000,
                "forward_hec.ack_poll_ms": 50, "topics.dlq": dlq}) as daemon:
            # Every event sent, not acknowledged in time, sent again: still nothing committed.
            wait_until(lambda: times_seen() >= 2, "every event sent twice")
            assert set(committed(kafka.bootstrap, group, topic, 3).values()) == {-1001}
            stand.release_acks()
            ends = {p: e for p, e in end_offsets(kafka.bootstrap, topic, 3).items() if e}
            wait_until(lambda: {p: o for p, o in committed(kafka.bootstrap, group, topic, 3)
                                .items() if p in ends} == ends,
                       "offsets committed to the end after the acks")
            stats = daemon.runner.stats  # a rewind re-reads: dead letters are at least once
            assert stats.dead_lettered >= 1
            assert stats.consumed == stats.processed + stats.dead_lettered
    finally:
        stand.stop()
    batches = stand.batches
    assert max(len(b.events) for b in batches) == 8  # several events per request
    assert {b.headers["authorization"] for b in batches} == {f"Splunk tok-{unique}"}
    (channel,) = {b.headers["x-splunk-request-channel"] for b in batches}
    assert str(uuid.UUID(channel)) == channel
    by_id = {e["event"]["eventID"]: e for e in stand.events()}
    assert set(by_id) == ids
    for record in records:
        event = by_id[record["eventID"]]
        assert event["event"] == record
        assert (event["sourcetype"], event["source"]) == ("aws:cloudtrail", "trailpipe")
        event_ms, _ = parse_event_time(record)
        assert event.get("time") == (None if event_ms is None else event_ms / 1000)
    dead = read_all(kafka.bootstrap, dlq, expected=stats.dead_lettered)
    assert {m.value() for m in dead} == {b"not json"}
