"""Mapping + Avro encoding of CloudTrail records in worker processes (``producer.workers``).

One Python thread maps and encodes ~50k events/s at most; :class:`EncodePool` moves that work to
``workers`` processes while the calling process keeps producing to Kafka.

Contract: :meth:`EncodePool.encode` turns an iterable of :data:`EncodeTask` (or ``None``) into
an iterator of results **in input order**, one per item: ``(key, payload)`` where ``key`` is
:func:`~pipeline.events.partition.event_key` and ``payload`` is
:func:`~pipeline.events.wire.encode` of :func:`~pipeline.events.mapping.to_avro` of the record
``json.loads(raw.decode("utf-8"))``, byte for byte what the in-process path gives for that value
and the same ingest metadata; an :class:`EncodeError` for bad
input (the exceptions of :data:`MAPPING_ERRORS`, which the Publisher dead-letters); ``None`` for
a ``None`` item. Any other exception in a worker is re-raised by the iterator. At most
``window`` chunks of ``chunk_size`` items are in flight, so memory stays bounded whatever the
input's length.

Tasks carry a record's raw JSON, not its parsed value: pickling a parsed CloudTrail record costs
the sending process ~5 µs, as much as the work saved by a second worker on a small machine,
while a ``bytes`` pickles for nearly nothing and the worker parses it again. So the raw bytes
must parse to the record's value, as they do for every record of :mod:`producers.files`.

Workers are started with ``spawn`` (never ``fork``: the parent may hold librdkafka threads),
import :mod:`pipeline.events` once, and ignore SIGINT (the parent decides: :meth:`close` on a
normal end, :meth:`terminate` on an error or Ctrl-C, as the context manager does).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from multiprocessing.pool import AsyncResult
from types import TracebackType
from typing import NamedTuple

from pipeline.events.errors import EventError
from pipeline.events.fused import encode_event
from pipeline.events.partition import event_key
from producers.files import loads

MAPPING_ERRORS: tuple[type[Exception], ...] = (EventError, TypeError, ValueError, OverflowError)
"""Exceptions of mapping + encoding that mean bad input (dead-lettered, never fatal)."""

CHUNK_SIZE = 500

EncodeTask = tuple[bytes, int, str, str, str | None]
"""(record's raw JSON, ingest_time_ms, source, producer_id, location): the fields of
IngestMeta travel as a plain tuple (cheaper to pickle than the dataclass)."""


class EncodeError(NamedTuple):
    """Mapping or encoding failed: the exception's type name and message."""

    error_type: str
    message: str


EncodeResult = tuple[bytes, bytes] | EncodeError | None


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def encode_task(task: EncodeTask | None) -> EncodeResult:
    """One item, as a worker does it (also usable in-process)."""
    if task is None:
        return None
    raw, ingest_time_ms, source, producer_id, location = task
    try:
        value = loads(raw)
        payload = encode_event(value, ingest_time_ms, source, producer_id, location)
    except MAPPING_ERRORS as exc:
        return EncodeError(type(exc).__name__, str(exc))
    return event_key(value), payload


def _encode_chunk(chunk: list[EncodeTask | None]) -> list[EncodeResult]:
    return [encode_task(task) for task in chunk]


class EncodePool:
    """``workers`` processes mapping and encoding records; see the module's contract."""

    def __init__(self, workers: int, *, chunk_size: int = CHUNK_SIZE,
                 window: int | None = None, start_method: str = "spawn") -> None:
        """``window``: chunks in flight (default ``2 * workers + 1``)."""
        if workers < 1 or chunk_size < 1:
            raise ValueError("workers and chunk_size must be >= 1")
        if start_method == "fork":
            raise ValueError("fork is unsafe with librdkafka threads; use spawn or forkserver")
        self.workers, self.chunk_size = workers, chunk_size
        self.window = window or 2 * workers + 1
        ctx = multiprocessing.get_context(start_method)
        self._pool = ctx.Pool(workers, initializer=_init_worker)

    def encode(self, tasks: Iterable[EncodeTask | None]) -> Iterator[EncodeResult]:
        """Results in input order; ``tasks`` is consumed lazily, ``window`` chunks ahead."""
        pending: deque[AsyncResult[list[EncodeResult]]] = deque()
        chunk: list[EncodeTask | None] = []
        for task in tasks:
            chunk.append(task)
            if len(chunk) == self.chunk_size:
                pending.append(self._pool.apply_async(_encode_chunk, (chunk,)))
                chunk = []
                if len(pending) >= self.window:
                    yield from pending.popleft().get()
        if chunk:
            pending.append(self._pool.apply_async(_encode_chunk, (chunk,)))
        while pending:
            yield from pending.popleft().get()

    def warm_up(self) -> None:
        """Wait until every worker has started and imported the encoder."""
        empty: list[list[EncodeTask | None]] = [[None]] * self.workers
        self._pool.map(_encode_chunk, empty, chunksize=1)

    def close(self) -> None:
        """Let the workers finish their tasks, then wait for them to exit."""
        self._pool.close()
        self._pool.join()

    def terminate(self) -> None:
        """Stop the workers now (in-flight results are lost) and wait for them."""
        self._pool.terminate()
        self._pool.join()

    def __enter__(self) -> EncodePool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.terminate()
