"""The Splunk HTTP Event Collector forwarder: batched ``POST /services/collector/event`` with
indexer acknowledgement.

Each record becomes one HEC event object (:func:`hec_event`): ``time`` (eventTime in epoch
seconds with a millisecond fraction; left out when the record has no valid eventTime, so
Splunk uses the arrival time), ``host``, ``source``, ``sourcetype`` (``aws:cloudtrail``),
``index`` (when set) and ``event`` (the CloudTrail object). A request body is such objects
joined by newlines, at most ``batch_max_events`` / ``batch_max_bytes`` each (a single larger
event goes alone). Every request carries ``Authorization: Splunk <token>`` and
``X-Splunk-Request-Channel: <a UUID per daemon run>``.

:meth:`HecSink.flush` returns only once every batch was acknowledged: with ``ack`` on it
posts the batches, collects their ``ackId`` s and polls ``POST /services/collector/ack``
(``{"acks": [ids]}``) every ``ack_poll_ms`` until all are true. Acknowledged batches leave
the buffer; if any is not acknowledged within ``ack_timeout_ms``, or a request fails (a
connection error, 429/503 busy, any other non-200), flush raises and the Runner retries and
then backpressures: the unacknowledged events are sent again (at least once: duplicates are
possible when an indexer acknowledges late; dedupe by eventID). The processor sends only valid
JSON objects, so a 400 means the indexer refuses the events themselves (an index the token may
not write, say): that is raised with Splunk's answer and blocks the forwarder until fixed,
never dropped. With ``ack`` off, a 200 answer counts as delivered.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from pipeline.events.mapping import parse_event_time
from pipeline.forward.config import ForwardHecConfig
from pipeline.logs import get_logger
from pipeline.model import Event, SinkBase, TopicPartitionKey

log = get_logger("pipeline.forward.hec")

EVENT_PATH, ACK_PATH, HEALTH_PATH = ("/services/collector/event", "/services/collector/ack",
                                     "/services/collector/health")


class HecError(RuntimeError):
    """The collector refused a request or did not acknowledge in time (flush failed)."""


def hec_event(record: dict[str, Any], *, host: str, source: str, sourcetype: str,
              index: str | None) -> bytes:
    """One HEC event object for a CloudTrail record, as compact UTF-8 JSON."""
    event: dict[str, Any] = {}
    event_ms, _ = parse_event_time(record)
    if event_ms is not None:
        event["time"] = event_ms / 1000  # repr keeps exactly the millisecond digits
    event.update(host=host, source=source, sourcetype=sourcetype)
    if index:
        event["index"] = index
    event["event"] = record
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def renderer(cfg: ForwardHecConfig) -> Callable[[dict[str, Any]], bytes]:
    host = cfg.host or socket.gethostname()
    return lambda record: hec_event(record, host=host, source=cfg.source,
                                    sourcetype=cfg.sourcetype, index=cfg.index)


def chunks(items: list[bytes], max_events: int, max_bytes: int) -> Iterator[list[int]]:
    """Indexes of ``items`` in request-sized runs: at most ``max_events`` each and at most
    ``max_bytes`` of body (newlines counted), except a single larger item alone."""
    run: list[int] = []
    size = 0
    for i, item in enumerate(items):
        grown = size + len(item) + (1 if run else 0)
        if run and (len(run) >= max_events or grown > max_bytes):
            yield run
            run, grown = [], len(item)
        run.append(i)
        size = grown
    if run:
        yield run


def http_client(cfg: ForwardHecConfig) -> httpx.Client:
    """The collector's client: TLS verified against ``ca_file`` (or the system store) unless
    ``verify_tls`` is off; cookies kept (load balancers pin a channel's acks by cookie)."""
    verify: ssl.SSLContext | bool = cfg.verify_tls
    if cfg.verify_tls and cfg.ca_file is not None:
        verify = ssl.create_default_context(cafile=str(cfg.ca_file))
    return httpx.Client(base_url=cfg.url, verify=verify, timeout=cfg.request_timeout_s)


@dataclass(frozen=True, slots=True)
class _Item:
    data: bytes
    tp: TopicPartitionKey | None
    offset: int


class HecSink(SinkBase):
    """Buffers HEC events and delivers them on flush (see the module docstring)."""

    def __init__(self, cfg: ForwardHecConfig, client: httpx.Client, *,
                 channel: str | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._cfg, self._client = cfg, client
        self.channel = channel or str(uuid.uuid4())
        self._sleep, self._clock = sleep, clock
        self._buffer: list[_Item] = []
        self._bytes = 0
        token = cfg.token.get_secret_value() if cfg.token is not None else ""
        self._headers = {"Authorization": f"Splunk {token}",
                         "X-Splunk-Request-Channel": self.channel}
        self.counters = {"requests": 0, "events_sent": 0, "events_acked": 0, "ack_polls": 0,
                         "ack_timeouts": 0}

    def add(self, item: Any, source: Event | None) -> None:
        self._buffer.append(_Item(item, source.tp if source else None,
                                  source.offset if source else 0))
        self._bytes += len(item)

    def should_flush(self, now_ms: int) -> bool:
        cfg = self._cfg
        return len(self._buffer) >= cfg.batch_max_events or self._bytes >= cfg.batch_max_bytes

    def flush(self) -> None:
        """Post every buffered event and wait for the acknowledgements; raises HecError or
        httpx.HTTPError, keeping what was not acknowledged."""
        if not self._buffer:
            return
        cfg = self._cfg
        runs = list(chunks([i.data for i in self._buffer], cfg.batch_max_events,
                           cfg.batch_max_bytes))
        ack_ids = [self._post([self._buffer[i].data for i in run]) for run in runs]
        acked = self._await_acks([a for a in ack_ids if a is not None])
        left = [self._buffer[i] for run, ack in zip(runs, ack_ids, strict=True)
                if ack is not None and ack not in acked for i in run]
        self.counters["events_acked"] += len(self._buffer) - len(left)
        self._buffer, self._bytes = left, sum(len(i.data) for i in left)
        if left:
            self.counters["ack_timeouts"] += 1
            raise HecError(f"{len(left)} events not acknowledged within "
                           f"{cfg.ack_timeout_ms} ms (channel {self.channel}); sending again")

    def _post(self, events: list[bytes]) -> int | None:
        """One request; its ackId (None with ``ack`` off)."""
        response = self._client.post(EVENT_PATH, content=b"\n".join(events),
                                     headers=self._headers)
        self.counters["requests"] += 1
        if response.status_code != 200:
            raise HecError(_refusal(response, f"{len(events)} events"))
        self.counters["events_sent"] += len(events)
        if not self._cfg.ack:
            return None
        ack_id = _json(response).get("ackId")
        if not isinstance(ack_id, int):
            raise HecError("the collector returned no ackId: enable indexer acknowledgement "
                           "on the HEC token, or set [forward_hec] ack = false")
        return ack_id

    def _await_acks(self, ack_ids: list[int]) -> set[int]:
        """Poll until every id is acknowledged or ``ack_timeout_ms`` passed; the acked ids."""
        waiting, acked = set(ack_ids), set()
        deadline_s = self._clock() + self._cfg.ack_timeout_ms / 1000
        while waiting:
            response = self._client.post(ACK_PATH, json={"acks": sorted(waiting)},
                                         headers=self._headers)
            self.counters["ack_polls"] += 1
            if response.status_code != 200:
                raise HecError(_refusal(response, "an ack poll"))
            statuses = _json(response).get("acks") or {}
            done = {int(k) for k, v in statuses.items() if v is True} & waiting
            acked |= done
            waiting -= done
            if not waiting or self._clock() >= deadline_s:
                break
            self._sleep(self._cfg.ack_poll_ms / 1000)
        return acked

    def discard(self) -> None:
        self._buffer, self._bytes = [], 0

    def release(self, partitions: Collection[TopicPartitionKey]) -> None:
        gone = set(partitions)
        self._buffer = [i for i in self._buffer if i.tp not in gone]
        self._bytes = sum(len(i.data) for i in self._buffer)

    def healthcheck(self) -> bool:
        try:
            response = self._client.get(HEALTH_PATH)
        except httpx.HTTPError as exc:
            log.warning("hec_unreachable", url=self._cfg.url, error=str(exc),
                        error_type=type(exc).__name__)
            return False
        if response.status_code != 200:
            log.warning("hec_unhealthy", url=self._cfg.url, status=response.status_code)
        return response.status_code == 200

    def close(self) -> None:
        self._client.close()

    def summary(self) -> dict[str, Any]:
        return {**self.counters, "channel": self.channel}


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refusal(response: httpx.Response, what: str) -> str:
    """Why the collector refused ``what``: HTTP status and Splunk's code and text."""
    body = _json(response)
    busy = " (busy: retried)" if response.status_code in (429, 503) else ""
    return (f"HEC refused {what}: HTTP {response.status_code}{busy}, code "
            f"{body.get('code')}: {body.get('text') or response.text[:300]}")
