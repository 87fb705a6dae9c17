"""Observing one HTTP exchange for :mod:`producers.asgi.middleware` without changing it: the
messages pass through untouched, the request id is put in the scope, and at most ``limit`` bytes
of a JSON request/response body are kept. Nothing here raises into the app.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from producers.asgi.mapping import Exchange

REQUEST_ID_SCOPE_KEY = "trailpipe.request_id"
log = logging.getLogger("trailpipe.asgi")


class BodyTap:
    """Keeps up to ``limit`` bytes of a body seen in chunks; ``body()`` is None when it was
    longer, or did not end."""

    def __init__(self, limit: int, keep: bool) -> None:
        self.limit, self.keep = limit, keep
        self.size, self.complete = 0, False
        self._chunks: list[bytes] = []

    def add(self, chunk: bytes, more: bool) -> None:
        self.size += len(chunk)
        self.keep = self.keep and self.size <= self.limit
        if self.keep:
            self._chunks.append(chunk)
        else:
            self._chunks.clear()
        self.complete = not more

    def body(self) -> bytes | None:
        return b"".join(self._chunks) if self.keep and self.complete else None


class Capture:
    """Observes one HTTP exchange without changing it."""

    def __init__(self, scope: Scope, limit: int) -> None:
        headers = [(bytes(k), bytes(v)) for k, v in scope.get("headers", [])]
        self.exchange = Exchange(
            request_id=str(uuid.uuid4()), start_ms=time.time_ns() // 1_000_000,
            method=str(scope.get("method", "GET")).upper(), path=str(scope.get("path", "")),
            query_string=bytes(scope.get("query_string", b"")), headers=headers,
            client=scope.get("client"), root_path=str(scope.get("root_path", "")))
        self.limit = limit
        self.started = time.perf_counter()
        self.request = BodyTap(limit, is_json(headers))
        self.response = BodyTap(limit, False)

    @classmethod
    def begin(cls, scope: Scope, limit: int) -> Capture | None:
        try:
            capture = cls(scope, limit)
            scope[REQUEST_ID_SCOPE_KEY] = capture.exchange.request_id
            return capture
        except Exception:
            log.error("audit capture failed; request not audited", exc_info=True)
            return None

    def receive(self, receive: Receive) -> Receive:
        async def audited_receive() -> Message:
            message = await receive()
            if message.get("type") == "http.request":
                self._guard(self.request.add, message.get("body", b""),
                            bool(message.get("more_body", False)))
            return message
        return audited_receive

    def send(self, send: Send) -> Send:
        async def audited_send(message: Message) -> None:
            self._guard(self._on_send, message)
            await send(message)
        return audited_send

    def _on_send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.exchange.status = int(message["status"])
            self.response.keep = is_json(message.get("headers", []), response=True)
        elif message["type"] == "http.response.body":
            more = bool(message.get("more_body", False))
            self.response.add(message.get("body", b""), more)
            if not more:
                self.exchange.duration_ms = (time.perf_counter() - self.started) * 1000

    def _guard(self, observe: Callable[..., None], *args: Any) -> None:
        try:
            observe(*args)
        except Exception:  # a malformed message is the server's business, not ours
            log.debug("audit could not observe an ASGI message", exc_info=True)

    def finish(self, scope: Scope, exc: BaseException | None) -> Exchange:
        """The exchange, completed with what the app left in the scope."""
        ex = self.exchange
        ex.scope = dict(scope)
        ex.request_body, ex.request_bytes = self.request.body(), self.request.size
        ex.response_body, ex.response_bytes = self.response.body(), self.response.size
        if not ex.duration_ms:
            ex.duration_ms = (time.perf_counter() - self.started) * 1000
        if exc is not None:
            ex.exception = type(exc).__name__
            ex.status = ex.status if ex.status is not None and ex.status >= 500 else 500
        return ex


def is_json(headers: Any, response: bool = False) -> bool:
    """Whether a body is JSON by its content type (``application/json`` or ``*+json``), and,
    for a response, not content-encoded (e.g. gzipped by an inner middleware)."""
    content_type = encoding = ""
    for key, value in headers:
        name = bytes(key).lower()
        if name == b"content-type":
            content_type = bytes(value).decode("latin-1").split(";")[0].strip().lower()
        elif name == b"content-encoding":
            encoding = bytes(value).decode("latin-1").strip().lower()
    if response and encoding not in ("", "identity"):
        return False
    return content_type == "application/json" or content_type.endswith("+json")
