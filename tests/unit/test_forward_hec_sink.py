"""The HEC forwarder without a network: event objects and time, request batching, headers, and
the acknowledgement protocol against an in-process httpx transport."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from pipeline.forward.config import ForwardHecConfig
from pipeline.forward.hec import HecError, HecSink, chunks, hec_event
from pipeline.model import Event


def test_event_object_and_time() -> None:
    record = {"eventTime": "2024-03-01T12:34:56.789Z", "eventID": "ü|=\n"}
    body = json.loads(hec_event(record, host="h", source="trailpipe",
                                sourcetype="aws:cloudtrail", index="main"))
    assert body == {"time": 1709296496.789, "host": "h", "source": "trailpipe",
                    "sourcetype": "aws:cloudtrail", "index": "main", "event": record}
    raw = hec_event({"eventTime": "2024-03-01T12:34:56Z"}, host="h", source="s",
                    sourcetype="t", index=None)
    assert raw.startswith(b'{"time":1709296496.0,"host":"h"') and b"index" not in raw
    assert "time" not in json.loads(hec_event({"eventTime": "yesterday"}, host="h", source="s",
                                              sourcetype="t", index=None))


def test_chunks_by_count_and_bytes() -> None:
    items = [b"x" * 10] * 5
    assert list(chunks(items, 2, 1000)) == [[0, 1], [2, 3], [4]]
    assert list(chunks(items, 10, 21)) == [[0, 1], [2, 3], [4]]  # 10 + newline + 10
    assert list(chunks([b"x" * 50, b"y"], 10, 20)) == [[0], [1]]  # an oversized one alone


class Stand:
    """An in-process collector: records requests, acks per ``acked(ack_id, polls)``."""

    def __init__(self, acked: Callable[[int, int], bool], status: int = 200) -> None:
        self.acked, self.status = acked, status
        self.posts: list[httpx.Request] = []
        self.polls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ack"):
            self.polls += 1
            ids = json.loads(request.content)["acks"]
            return httpx.Response(200, json={"acks": {str(i): self.acked(i, self.polls)
                                                      for i in ids}})
        self.posts.append(request)
        if self.status != 200:
            return httpx.Response(self.status, json={"text": "Invalid data format", "code": 6})
        return httpx.Response(200, json={"text": "Success", "code": 0,
                                          "ackId": len(self.posts) - 1})


def sink_for(stand: Stand, **cfg: object) -> HecSink:
    config = ForwardHecConfig.model_validate({"url": "https://hec.test:8088",
                                               "token": "s3cret", **cfg})
    client = httpx.Client(base_url=config.url, transport=httpx.MockTransport(stand))
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    return HecSink(config, client, channel="chan-1", sleep=sleep, clock=lambda: now[0])


def fill(sink: HecSink, count: int) -> None:
    for n in range(count):
        sink.add(b'{"event":{"n":%d}}' % n, Event(None, None, 0, "t", n % 2, n))


def test_batches_headers_and_acks() -> None:
    stand = Stand(lambda _id, polls: polls >= 3)
    sink = sink_for(stand, batch_max_events=4)
    fill(sink, 10)
    assert sink.should_flush(0)
    sink.flush()
    assert [r.content.count(b"\n") + 1 for r in stand.posts] == [4, 4, 2]
    assert {r.headers["authorization"] for r in stand.posts} == {"Splunk s3cret"}
    assert {r.headers["x-splunk-request-channel"] for r in stand.posts} == {"chan-1"}
    assert stand.polls == 3 and sink.counters["events_acked"] == 10
    sink.flush()  # nothing left: no request
    assert len(stand.posts) == 3


def test_ack_timeout_raises_and_keeps_only_the_unacknowledged() -> None:
    stand = Stand(lambda ack_id, _polls: ack_id != 1)
    sink = sink_for(stand, batch_max_events=3, ack_timeout_ms=2000, ack_poll_ms=500)
    fill(sink, 6)
    with pytest.raises(HecError, match="3 events not acknowledged within 2000 ms"):
        sink.flush()
    stand.acked = lambda _id, _polls: True
    sink.flush()  # only the unacknowledged batch is sent again
    assert [r.content for r in stand.posts[2:]] == [stand.posts[1].content]


def test_refusals_raise_with_splunks_answer() -> None:
    sink = sink_for(Stand(lambda *_: True, status=400))
    fill(sink, 1)
    with pytest.raises(HecError, match="HTTP 400, code 6: Invalid data format"):
        sink.flush()
    busy = sink_for(Stand(lambda *_: True, status=503))
    fill(busy, 1)
    with pytest.raises(HecError, match=r"HTTP 503 \(busy: retried\)"):
        busy.flush()


def test_no_ack_id_names_the_fix_and_ack_off_needs_none() -> None:
    def no_ack(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"text": "Success", "code": 0})

    config = ForwardHecConfig.model_validate({"url": "https://hec.test:8088", "token": "t"})
    sink = HecSink(config, httpx.Client(base_url=config.url,
                                        transport=httpx.MockTransport(no_ack)))
    fill(sink, 1)
    with pytest.raises(HecError, match="enable indexer acknowledgement"):
        sink.flush()
    off = HecSink(config.model_copy(update={"ack": False}), httpx.Client(
        base_url=config.url, transport=httpx.MockTransport(no_ack)))
    fill(off, 2)
    off.flush()
    assert off.counters["events_acked"] == 2
