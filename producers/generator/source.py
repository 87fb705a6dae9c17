"""``trailpipe produce generator``: synthetic CloudTrail traffic at a steady rate."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence

from pipeline.config import GeneratorConfig
from producers.files import RawRecord
from producers.generator.engine import Generator
from producers.generator.shapes import Shape, shaped_records
from producers.publisher import Publisher

TICK_S = 0.05


def make_generator(cfg: GeneratorConfig, start_ms: int) -> Generator:
    """A Generator from config (raises ValueError naming valid scenarios on a bad name)."""
    return Generator(cfg.seed, cfg.accounts, cfg.regions, start_ms=start_ms,
                     error_rate=cfg.error_rate, scenarios=tuple(cfg.scenarios),
                     events_per_second=cfg.rate_per_s, scenario_every=cfg.scenario_every)


def run_generator(publisher: Publisher, gen: Generator, *, rate_per_s: float,
                  count: int | None = None, duration_s: float | None = None,
                  stop: threading.Event | None = None, shapes: Sequence[Shape] = ()) -> int:
    """Publish generated records, through ``shapes`` if any, paced at ``rate_per_s`` until the
    generator's ``count`` records are used up (shapes add or remove some), ``duration_s``
    seconds, or ``stop`` is set; returns how many were published. The caller flushes."""
    stop = stop or threading.Event()
    records = shaped_records(gen, shapes, count)
    started_s = time.monotonic()
    sent = 0
    while not stop.is_set():
        elapsed_s = time.monotonic() - started_s
        if duration_s is not None and elapsed_s >= duration_s:
            break
        due = int(elapsed_s * rate_per_s) + 1 - sent  # how far behind the schedule we are
        for _ in range(min(max(due, 0), 10_000)):  # bounded, so stop is noticed
            record = next(records, None)
            if record is None:
                return sent
            publisher.publish(RawRecord(f"generator#{sent}", json.dumps(record).encode(),
                                        value=record))
            sent += 1
        publisher.poll()
        stop.wait(TICK_S)
    return sent
