"""Micro-benchmark: the native batch decoder vs per-record fastavro, one thread, no Kafka.

``python -m bench.decode_bench [N]`` generates N events with the deterministic generator (as
``trailpipe produce`` maps them), encodes them as our single-object messages and decodes them
with :class:`pipeline.events.batch.AvroBatchDecoder` (in poll-sized batches) and with
``wire.decode`` one by one. Rates are rows per second of CPU time of this process (all of its
threads) and of wall time; the best of a few runs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from pipeline.config import GeneratorConfig
from pipeline.events import IngestMeta, to_avro, wire
from pipeline.events.batch import AvroBatchDecoder
from producers.generator.source import make_generator

START_MS = 1_764_000_000_000  # fixed, so every run decodes the same data
BATCH = 10_000  # values per decode call, about one poll of a busy consumer


def messages(n: int) -> list[bytes]:
    """``n`` generated events as single-object-encoded ApiCallEvent v1 messages."""
    gen = make_generator(GeneratorConfig(accounts=5, regions=3, rate_per_s=200.0), START_MS)
    return [wire.encode(to_avro(r, ingest=IngestMeta(START_MS, "generator", "bench-decode",
                                                     f"generator#{i}")))
            for i, r in enumerate(gen.records(n))]


def _best(run: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Least (cpu, wall) seconds of ``repeat`` runs."""
    cpu = wall = float("inf")
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        run()
        cpu, wall = min(cpu, time.process_time() - c0), min(wall, time.perf_counter() - w0)
    return cpu, wall


def measure(n: int = 100_000, batch: int = BATCH, repeat: int = 3) -> dict[str, Any]:
    """Rows/s of the batch decoder (batches of ``batch``) and of per-record fastavro."""
    msgs = messages(n)
    decoder = AvroBatchDecoder()
    chunks = [msgs[k:k + batch] for k in range(0, n, batch)]

    def native() -> None:
        for chunk in chunks:
            out = decoder(chunk)
            assert len(out.rows) == len(chunk) and not out.errors

    def fastavro() -> None:
        for m in msgs:
            wire.decode(m)

    native()  # warm up: schema parsing, imports
    cpu, wall = _best(native, repeat)
    fa_cpu, fa_wall = _best(fastavro, 1)
    return {
        "events": n, "batch": batch, "avg_message_bytes": round(sum(map(len, msgs)) / n),
        "batch_rows_per_s_cpu": round(n / cpu), "batch_rows_per_s_wall": round(n / wall),
        "fastavro_rows_per_s_cpu": round(n / fa_cpu),
        "fastavro_rows_per_s_wall": round(n / fa_wall),
        "speedup_cpu": round(fa_cpu / cpu, 1), "per_record_fallbacks": decoder.per_record,
    }


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 100_000
    for batch in (BATCH, n):
        for key, value in measure(n, batch).items():
            print(f"{key:>26}: {value:,}" if isinstance(value, int) else f"{key:>26}: {value}")
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
