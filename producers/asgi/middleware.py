"""CloudTrail for your own APIs: an ASGI middleware that turns every HTTP call of a service into
one CloudTrail-shaped event on Kafka (``audit.events.v1``, key ``"<account>|<region>"``).

Works with any ASGI app: plain ASGI, Starlette, and FastAPI (a FastAPI app is a Starlette app,
so route names and templates are found the same way)::

    app = AuditMiddleware(app, publisher=publisher, service="orders.example.internal",
                          account_id="111122223333", region="eu-west-1")
    # or: starlette_app.add_middleware(AuditMiddleware, publisher=..., service=..., ...)

Contract:

- Only ``http`` scopes are audited; ``websocket`` passes through untouched, ``lifespan`` too
  except that on shutdown the middleware first drains its queue and flushes the publisher.
- The response path is never slowed by Kafka: the middleware only observes the messages the
  app sends and receives (keeping at most ``max_body_bytes`` of a JSON request/response body,
  and only the part of the request body the app reads) and, once the app has returned (the
  response is sent), hands the exchange to a bounded queue. A worker thread builds the record
  (:func:`producers.asgi.mapping.build_record`: naming, redaction, identity) and calls
  ``publisher.publish`` with ``RawRecord(location="asgi:<service>:<requestID>")``, serving
  delivery reports in between.
- Nothing raises into the app: a full queue (``stats.dropped``), a resolver or mapping error or
  a ``publish`` that raises (``stats.failed``) is counted and logged (logger ``trailpipe.asgi``,
  first occurrence then every 1000th). Delivery failures are counted by the publisher
  (``publisher.stats.failed``). An exception from the app is recorded (errorCode
  ``InternalError``) and re-raised unchanged.
- :meth:`AuditMiddleware.flush` waits until every queued exchange was published and the
  publisher flushed; :meth:`AuditMiddleware.close` also stops the worker thread. Lifespan
  shutdown calls ``close``; without lifespan, call it before the process exits.

The request id (``requestID``, and the location) is a fresh UUID per request, also put in the
scope as ``scope["trailpipe.request_id"]`` for the app's own logs.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producers.asgi.capture import Capture
from producers.asgi.identity import IdentityResolver, default_identity
from producers.asgi.mapping import AuditContext, Exchange, RouteNamer, build_record
from producers.asgi.redact import DEFAULT_SECRET_KEYS
from producers.files import RawRecord
from producers.publisher import DeliveryFailed, Publisher

DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_MAX_QUEUE = 10_000
log = logging.getLogger("trailpipe.asgi")

__all__ = ["DEFAULT_SECRET_KEYS", "AuditMiddleware", "AuditStats", "IdentityResolver",
           "default_identity"]


@dataclass(slots=True)
class AuditStats:
    """``captured`` = ``published`` + ``dropped`` + ``failed`` + still queued."""

    captured: int = 0
    published: int = 0
    dropped: int = 0
    failed: int = 0


class AuditMiddleware:
    """Pure ASGI middleware auditing each HTTP call (see the module docstring for the contract,
    :mod:`producers.asgi.mapping` for the eventName, redaction and errorCode rules)."""

    def __init__(self, app: ASGIApp, *, publisher: Publisher, service: str, account_id: str,
                 region: str, resolver: IdentityResolver | None = None,
                 redact: Collection[str] = DEFAULT_SECRET_KEYS,
                 route_names: RouteNamer | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, trust_forwarded: bool = False,
                 max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self.app, self.publisher = app, publisher
        self.context = AuditContext(service, account_id, region, resolver or default_identity,
                                    frozenset(redact), route_names, trust_forwarded)
        self.max_body_bytes = max_body_bytes
        self.stats = AuditStats()
        self._lock = threading.Lock()
        self._worker = _Worker(self._publish, publisher.poll, max_queue)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        capture = Capture.begin(scope, self.max_body_bytes) if scope["type"] == "http" else None
        if capture is None:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, capture.receive(receive), capture.send(send))
        except BaseException as exc:
            self._submit(capture, scope, exc)
            raise
        self._submit(capture, scope, None)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Publish every queued exchange, then flush the publisher. True when all were handed
        over and Kafka confirmed every record in time; never raises (failures are logged)."""
        deadline = time.monotonic() + timeout_s
        drained = self._worker.wait_idle(timeout_s)
        try:
            self.publisher.flush(max(0.0, deadline - time.monotonic()))
        except DeliveryFailed as exc:
            log.error("audit events not delivered: %s", exc)
            return False
        return drained

    def close(self, timeout_s: float = 30.0) -> bool:
        """:meth:`flush`, then stop the worker thread (done on lifespan shutdown). A request
        arriving later starts a new worker. Returns what :meth:`flush` returned."""
        flushed = self.flush(timeout_s)
        self._worker.stop(5.0)
        return flushed

    def _submit(self, capture: Capture, scope: Scope, exc: BaseException | None) -> None:
        with self._lock:
            self.stats.captured += 1
        try:
            exchange = capture.finish(scope, exc)
            if not self._worker.submit(exchange):
                self._count("dropped", "audit queue full, event of request %s dropped",
                            exchange.request_id)
        except Exception:  # never into the app
            self._count("failed", "audit capture failed", exc_info=True)

    def _publish(self, exchange: Exchange) -> None:
        try:
            record = build_record(exchange, self.context)
            raw = json.dumps(record, default=str, allow_nan=False, ensure_ascii=False).encode()
            location = f"asgi:{self.context.service}:{exchange.request_id}"
            self.publisher.publish(RawRecord(location=location, raw=raw, value=json.loads(raw)))
        except Exception:
            self._count("failed", "audit event of request %s not published",
                        exchange.request_id, exc_info=True)
            return
        with self._lock:
            self.stats.published += 1

    def _count(self, what: str, message: str, *args: Any, exc_info: bool = False) -> None:
        with self._lock:
            count = getattr(self.stats, what) + 1
            setattr(self.stats, what, count)
        if count == 1 or count % 1000 == 0:
            log.error(message + f" ({what} so far: {count})", *args, exc_info=exc_info)

    def _lifespan_send(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await run_in_threadpool(self.close)
            await send(message)
        return lifespan_send


class _Worker:
    """One daemon thread publishing queued exchanges and serving delivery reports; started on
    the first submit."""

    def __init__(self, handle: Callable[[Exchange], None], poll: Callable[[float], None],
                 max_queue: int) -> None:
        self._handle, self._poll = handle, poll
        self._queue: queue.Queue[Exchange] = queue.Queue(max_queue)
        self._idle = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def submit(self, item: Exchange) -> bool:
        """Queue an exchange without blocking; False when the queue is full."""
        with self._idle:
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._stop,),
                                                name="audit-publish", daemon=True)
                self._thread.start()
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                return False
            self._pending += 1
        return True

    def wait_idle(self, timeout_s: float) -> bool:
        """True when every submitted exchange was handled within ``timeout_s``."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout_s)

    def stop(self, timeout_s: float) -> None:
        """End the thread once the queue is empty (a later submit starts a new one)."""
        with self._idle:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None:
            thread.join(timeout_s)

    def _run(self, stop: threading.Event) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                self._safe_poll()
                if stop.is_set():
                    return
                continue
            try:
                self._handle(item)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
            self._safe_poll()

    def _safe_poll(self) -> None:
        try:
            self._poll(0)
        except Exception:
            log.error("audit publisher poll failed", exc_info=True)
            time.sleep(0.1)
