"""`trailpipe produce cloudtrail-dir --workers 2`: mapping + encoding in worker processes gives
the same outcome as in-process: same summary counts, every event decodes to its original."""

from __future__ import annotations

import pytest
from kit import read_all
from test_produce import CORPUS, originals, produce

from pipeline.events.mapping import from_avro
from pipeline.events.partition import event_key, partition_for
from pipeline.events.wire import decode

pytestmark = pytest.mark.integration
COUNTS = ("files", "read", "produced", "dead_lettered", "failed", "bytes_in", "pending")


def test_workers_2_matches_workers_1_and_round_trips(kafka, make_topic) -> None:
    events1, dlq1 = make_topic("events", 6), make_topic("dlq", 1)
    events2, dlq2 = make_topic("events", 6), make_topic("dlq", 1)
    rc1, one = produce(kafka, events1, dlq1, "cloudtrail-dir", str(CORPUS))
    rc2, two = produce(kafka, events2, dlq2, "cloudtrail-dir", str(CORPUS), "--workers", "2")
    assert rc1 == rc2 == 0, (one, two)
    assert {k: two[k] for k in COUNTS} == {k: one[k] for k in COUNTS}
    want = originals()
    assert two["produced"] == len(want) == 1073 and two["balanced"]

    msgs = read_all(kafka.bootstrap, events2, expected=len(want), timeout_s=60)
    seen = set()
    for msg in msgs:
        headers = dict(msg.headers())
        where = headers["x-source-location"].decode()
        original = want[where]
        assert from_avro(decode(msg.value())) == original, where  # lossless, types included
        assert msg.key() == event_key(original)
        assert msg.partition() == partition_for(msg.key(), 6)
        seen.add(where)
    assert seen == set(want) and len(msgs) == len(want)

    dead1 = read_all(kafka.bootstrap, dlq1, expected=one["dead_lettered"])
    dead2 = read_all(kafka.bootstrap, dlq2, expected=two["dead_lettered"])
    assert (sorted((m.value(), sorted(m.headers())) for m in dead2)
            == sorted((m.value(), sorted(m.headers())) for m in dead1))
