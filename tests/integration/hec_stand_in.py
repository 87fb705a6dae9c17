"""A local stand-in for Splunk's HTTP Event Collector, for the HEC forwarder's tests.

It is NOT Splunk: it implements only what the forwarder relies on, as Splunk documents it —
``POST /services/collector/event`` (concatenated JSON event objects, ``Authorization: Splunk
<token>`` checked, a request channel required with indexer acknowledgement: the
``X-Splunk-Request-Channel`` header or ``?channel=``), answering ``{"text": "Success",
"code": 0, "ackId": n}`` with ack ids counted per channel; ``POST /services/collector/ack``
(``{"acks": [ids]}`` → ``{"acks": {"id": bool}}``, an id reported true once and then
forgotten, as Splunk does); ``GET /services/collector/health``. Acknowledgements become true
``ack_delay_s`` after the batch arrived, and never while :meth:`HecStandIn.hold_acks` is in
force (until :meth:`release_acks`). Error answers use Splunk's codes (2 token required,
4 invalid token, 6 invalid data format, 10 channel missing, 12 event field required).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Batch:
    channel: str
    headers: dict[str, str]
    events: list[dict[str, Any]]
    ack_id: int
    at_s: float


@dataclass
class HecStandIn:
    token: str
    ack_delay_s: float = 0.0
    batches: list[Batch] = field(default_factory=list)
    ack_polls: int = 0
    holding: bool = False
    _next_ack: dict[str, int] = field(default_factory=dict)
    _reported: set[tuple[str, int]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def hold_acks(self) -> None:
        self.holding = True

    def release_acks(self) -> None:
        self.holding = False

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e for b in self.batches for e in b.events]

    def start(self) -> HecStandIn:
        stand = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if urlsplit(self.path).path == "/services/collector/health":
                    self.answer(200, {"text": "HEC is healthy", "code": 17})
                else:
                    self.answer(404, {"text": "not found", "code": 404})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                url = urlsplit(self.path)
                status, answer = stand.handle(url.path, parse_qs(url.query),
                                              {k.lower(): v for k, v in self.headers.items()},
                                              body)
                self.answer(status, answer)

            def answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def handle(self, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: bytes) -> tuple[int, dict[str, Any]]:
        auth = headers.get("authorization", "")
        if not auth:
            return 401, {"text": "Token is required", "code": 2}
        if auth != f"Splunk {self.token}":
            return 403, {"text": "Invalid token", "code": 4}
        channel = headers.get("x-splunk-request-channel") or (query.get("channel") or [""])[0]
        if not channel:
            return 400, {"text": "Data channel is missing", "code": 10}
        if path == "/services/collector/event":
            return self._event(channel, headers, body)
        if path == "/services/collector/ack":
            return self._ack(channel, json.loads(body)["acks"])
        return 404, {"text": "not found", "code": 404}

    def _event(self, channel: str, headers: dict[str, str],
               body: bytes) -> tuple[int, dict[str, Any]]:
        events, text, decoder = [], body.decode("utf-8"), json.JSONDecoder()
        position = 0
        try:
            while text[position:].strip():
                while text[position].isspace():
                    position += 1
                event, position = decoder.raw_decode(text, position)
                events.append(event)
        except ValueError:
            return 400, {"text": "Invalid data format", "code": 6}
        if not all(isinstance(e, dict) and "event" in e for e in events):
            return 400, {"text": "Event field is required", "code": 12}
        with self._lock:
            ack_id = self._next_ack.get(channel, 0)
            self._next_ack[channel] = ack_id + 1
            self.batches.append(Batch(channel, headers, events, ack_id, time.monotonic()))
        return 200, {"text": "Success", "code": 0, "ackId": ack_id}

    def _ack(self, channel: str, ids: list[int]) -> tuple[int, dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            self.ack_polls += 1
            out: dict[str, bool] = {}
            for ack_id in ids:
                batch = next((b for b in self.batches if b.channel == channel
                              and b.ack_id == ack_id), None)
                done = (batch is not None and not self.holding
                        and (channel, ack_id) not in self._reported
                        and now >= batch.at_s + self.ack_delay_s)
                if done:  # reported true once, then forgotten
                    self._reported.add((channel, ack_id))
                out[str(ack_id)] = done
        return 200, {"acks": out}
