"""The HTTP collector: ``POST /v1/events`` takes CloudTrail-shaped records, ``GET /healthz``.

Body: a JSON array, a ``{"Records": [...]}`` document, a single object, or NDJSON.
Responses (JSON):
- 202 ``{"request_id", "accepted", "dead_lettered", "errors"}`` only after Kafka confirmed every
  record (invalid ones are dead-lettered with location ``http:<request_id>...`` and listed in
  ``errors``);
- 400 when no record of the body was usable (each listed in ``errors``, all dead-lettered);
- 401 without a valid bearer token; 413 body over ``max_body_bytes``;
- 429 with ``Retry-After`` when ``max_inflight_requests`` are already being handled;
- 503 when Kafka did not confirm delivery in time (the client should retry).
"""

from __future__ import annotations

import hmac
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipeline.config import HttpConfig
from producers.files import RawRecord, parse_bytes
from producers.publisher import Batch, Publisher

HEALTHZ_TIMEOUT_S = 1.0
"""How long ``GET /healthz`` waits for Kafka's metadata (below probes' usual 2 s timeouts)."""


class BodyTooLarge(Exception):
    pass


class Collector:
    """Request handling state: auth, the in-flight limit, and the publisher's poll thread."""

    def __init__(self, publisher: Publisher, cfg: HttpConfig, max_record_bytes: int) -> None:
        self.publisher, self.cfg, self.max_record_bytes = publisher, cfg, max_record_bytes
        self._tokens = [t.get_secret_value().encode() for t in cfg.tokens]
        self._inflight = 0
        self._stop = threading.Event()

    def authorized(self, request: Request) -> bool:
        if self.cfg.allow_anonymous and not self._tokens:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and any(
            hmac.compare_digest(token.encode(), t) for t in self._tokens)

    async def body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.cfg.max_body_bytes:
            raise BodyTooLarge
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.cfg.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    async def ingest(self, request: Request) -> JSONResponse:
        if not self.authorized(request):
            return JSONResponse({"error": "missing or invalid bearer token"}, 401,
                                headers={"WWW-Authenticate": "Bearer"})
        if self._inflight >= self.cfg.max_inflight_requests:
            return JSONResponse({"error": "collector busy, retry later"}, 429,
                                headers={"Retry-After": "1"})
        self._inflight += 1
        try:
            return await self._handle(request)
        finally:
            self._inflight -= 1

    async def _handle(self, request: Request) -> JSONResponse:
        try:
            data = await self.body(request)
        except BodyTooLarge:
            return JSONResponse({"error": f"body over {self.cfg.max_body_bytes} bytes"}, 413)
        request_id = uuid.uuid4().hex
        records = list(parse_bytes(data, f"http:{request_id}", self.max_record_bytes))
        batch = await run_in_threadpool(self._publish, records)
        confirmed = await run_in_threadpool(batch.wait, self.cfg.delivery_timeout_s)
        if not confirmed or batch.errors:
            return JSONResponse({"request_id": request_id, "error": "Kafka did not confirm "
                                 "delivery; retry the request", "details": batch.errors[:5]}, 503)
        errors = [{"location": r.location, "error_type": r.error_type, "error": r.error}
                  for r in records if r.error is not None]
        status = 400 if batch.produced == 0 else 202
        return JSONResponse({"request_id": request_id, "accepted": batch.produced,
                             "dead_lettered": batch.dead_lettered, "errors": errors}, status)

    def _publish(self, records: list[RawRecord]) -> Batch:
        batch = Batch()
        for record in records:
            self.publisher.publish(record, batch)
        return batch

    async def healthz(self, _request: Request) -> JSONResponse:
        """200 when the events topic's metadata comes back within ``HEALTHZ_TIMEOUT_S``, else
        503: a probe gets its answer in about a second even when Kafka is unreachable."""
        ok = await run_in_threadpool(self.publisher.healthy, HEALTHZ_TIMEOUT_S)
        return JSONResponse({"status": "ok" if ok else "kafka unreachable",
                             "inflight_requests": self._inflight}, 200 if ok else 503)

    def poll_forever(self) -> None:
        """Serve delivery reports so waiting requests are answered promptly."""
        while not self._stop.is_set():
            self.publisher.poll(0.05)

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        poller = threading.Thread(target=self.poll_forever, name="delivery-poll", daemon=True)
        poller.start()
        try:
            yield
        finally:
            self._stop.set()
            poller.join(5)


def build_app(collector: Collector) -> Starlette:
    """The ASGI app of the collector."""
    return Starlette(routes=[Route("/v1/events", collector.ingest, methods=["POST"]),
                             Route("/healthz", collector.healthz, methods=["GET"])],
                     lifespan=collector.lifespan)
