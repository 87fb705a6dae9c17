"""structlog, configured once: JSON lines when stderr is not a TTY, readable output on a TTY.

Daemons log one line per lifecycle event (``partitions_assigned``, ``batch_flushed``,
``offsets_committed``, ...), never one per message in normal operation.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from pipeline.config import LogConfig


def configure_logging(config: LogConfig) -> None:
    """Configure structlog for the whole process; safe to call more than once."""
    level = getattr(logging, config.level.upper())
    as_json = config.format == "json" or (config.format == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A lazy logger carrying ``component=name``; it follows whatever configuration is current
    when it logs, so module-level loggers created at import time stay correct."""
    return structlog.get_logger(component=name)
