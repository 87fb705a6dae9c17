"""structlog, configured once: JSON lines when stderr is not a TTY, readable output on a TTY.

Daemons log one line per lifecycle event (``partitions_assigned``, ``batch_flushed``,
``offsets_committed``, ...), never one per message in normal operation.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import structlog

from pipeline.config import LogConfig

KAFKA_LOGGER = "trailpipe.librdkafka"
"""The stdlib logger handed to every Kafka client, so librdkafka's own lines come out in the
same structured format instead of raw ``%4|...`` lines on stderr."""


_WARNING_LEVELS = frozenset({"warning", "error", "critical", "exception"})
_warnings = [0]
_warnings_lock = threading.Lock()


def warnings_logged() -> int:
    """Lines of level warning or worse this process logged (librdkafka's too), since start:
    the dashboard counts them (``trailpipe_log_warnings_total``)."""
    return _warnings[0]


def count_warnings(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """A processor (after ``add_log_level``): counts the lines of :func:`warnings_logged`."""
    if event.get("level") in _WARNING_LEVELS:
        with _warnings_lock:
            _warnings[0] += 1
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at each write: a CLI runner or a test may swap
    (and close) the stream after logging was configured."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(config: LogConfig) -> None:
    """Configure structlog (and the stdlib loggers of libraries) for the whole process;
    safe to call more than once."""
    level = getattr(logging, config.level.upper())
    as_json = config.format == "json" or (config.format == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        count_warnings,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        plain_keys,
    ]
    _route_stdlib(shared, renderer, level)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def plain_keys(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """A processor: every dict value keyed by something other than strings (offsets keyed by
    ``(topic, partition)``, say) gets string keys (``topic[partition]``), so the JSON renderer
    never fails on a log line."""
    for name, value in event.items():
        if isinstance(value, dict) and not all(type(k) is str for k in value):
            event[name] = {_key_text(k): v for k, v in value.items()}
    return event


def _key_text(key: Any) -> str:
    if type(key) is tuple and len(key) == 2:
        return f"{key[0]}[{key[1]}]"
    return key if type(key) is str else str(key)


def get_logger(name: str) -> Any:
    """A lazy logger carrying ``component=name``; it follows whatever configuration is current
    when it logs, so module-level loggers created at import time stay correct."""
    return structlog.get_logger(component=name)


def _route_stdlib(shared: list[Any], renderer: Any, level: int) -> None:
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name]))
    for name in (KAFKA_LOGGER, "trailpipe.asgi"):
        lib = logging.getLogger(name)
        lib.handlers = [handler]
        lib.setLevel(level)
        lib.propagate = False


def kafka_logger() -> logging.Logger:
    """The logger to pass as librdkafka's ``logger`` setting."""
    return logging.getLogger(KAFKA_LOGGER)
