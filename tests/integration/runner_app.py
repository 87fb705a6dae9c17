"""A tiny daemon built on the real Runner, for the conformance tests (run in-process or as a
subprocess). Its sink appends one JSON line per record to a file and fsyncs on flush: a durable
sink that lets tests count every offset. Knobs simulate crashes and outages."""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.config import RunnerConfig
from pipeline.kafka import consumer_config, producer_config
from pipeline.model import (
    DecodedBatch,
    Event,
    KafkaRecord,
    SinkBase,
    StatelessProcessor,
    Unavailable,
)
from pipeline.runner import Runner

UNDECODABLE = b"undecodable"


def decode_values(values: Sequence[bytes | None]) -> DecodedBatch:
    """The batch decoder of the tests: each value as one binary ``value`` column;
    ``b"undecodable"`` does not decode."""
    errors = [(i, ValueError("undecodable value")) for i, v in enumerate(values)
              if v == UNDECODABLE]
    rows = [i for i, v in enumerate(values) if v != UNDECODABLE]
    table = pa.table({"value": pa.array([values[i] for i in rows], pa.binary())})
    return DecodedBatch(table, rows, errors)


def decode_value(raw: bytes | None) -> bytes | None:
    """The per-record decoder matching :func:`decode_values`."""
    if raw == UNDECODABLE:
        raise ValueError("undecodable value")
    return raw


class FileSink(SinkBase):
    """Buffers dicts; flush appends them as JSON lines (fsync). Raises while ``fail_flag``
    exists (a simulated outage). With ``crash_after_flush`` it SIGKILLs its own process right
    after the first durable flush, before the Runner can commit."""

    def __init__(self, path: Path, max_records: int = 100, fail_flag: Path | None = None,
                 crash_after_flush: bool = False) -> None:
        self.path, self.max_records = path, max_records
        self.fail_flag, self.crash_after_flush = fail_flag, crash_after_flush
        self.buffer: list[dict[str, Any]] = []
        self.failures = 0

    def add(self, item: Any, source: Event | None) -> None:
        self.buffer.append(item)

    def should_flush(self, now_ms: int) -> bool:
        return len(self.buffer) >= self.max_records

    def flush(self) -> None:
        if self.fail_flag is not None and self.fail_flag.exists():
            self.failures += 1
            raise OSError("simulated outage: sink unavailable")
        if not self.buffer:
            return
        with self.path.open("a") as fh:
            fh.writelines(json.dumps(item) + "\n" for item in self.buffer)
            fh.flush()
            os.fsync(fh.fileno())
        self.buffer.clear()
        if self.crash_after_flush:
            os.kill(os.getpid(), signal.SIGKILL)

    def discard(self) -> None:
        self.buffer.clear()


class EchoProcessor(StatelessProcessor):
    """Records its coordinates; ``b"poison"`` raises. With ``output_topic`` it emits a
    KafkaRecord instead, and SIGKILLs itself after ``kill_after_outputs`` outputs."""

    def __init__(self, output_topic: str | None = None, kill_after_outputs: int = 0) -> None:
        self.output_topic, self.kill_after_outputs = output_topic, kill_after_outputs
        self.outputs = 0

    def process(self, event: Event) -> Iterable[Any]:
        if event.value == b"poison":
            raise ValueError("poison record: cannot be processed")
        if self.output_topic is None:
            return [{"topic": event.topic, "partition": event.partition, "offset": event.offset,
                     "value": (event.value or b"").decode()}]
        self._maybe_die(1)
        return [KafkaRecord(self.output_topic, value=event.value, key=event.key)]

    def process_batch(self, table: pa.Table) -> Iterable[Any]:
        """The same as :meth:`process`, for a whole batch (raises if any row is poison)."""
        cols = {c: table[c].to_pylist() for c in ("_topic", "_partition", "_offset", "value")}
        if b"poison" in cols["value"]:
            raise ValueError("poison record: cannot be processed")
        if self.output_topic is None:
            return [{"topic": t, "partition": p, "offset": o, "value": v.decode()}
                    for t, p, o, v in zip(*cols.values(), strict=True)]
        self._maybe_die(table.num_rows)
        keys = table["_key"].to_pylist()
        return [KafkaRecord(self.output_topic, value=v, key=k)
                for v, k in zip(cols["value"], keys, strict=True)]

    def _maybe_die(self, new_outputs: int) -> None:
        if self.kill_after_outputs and self.outputs >= self.kill_after_outputs:
            time.sleep(1.5)  # let the producer thread ship the open transaction's records
            os.kill(os.getpid(), signal.SIGKILL)
        self.outputs += new_outputs


class Flaky:
    """Wraps a decoder: its first ``failures`` calls raise Unavailable (a registry outage)."""

    def __init__(self, decode: Any, failures: int) -> None:
        self.decode, self.failures, self.calls = decode, failures, 0

    def __call__(self, value: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise Unavailable("simulated outage: schema registry unreachable")
        return self.decode(value)


def build(bootstrap: str, topic: str, group: str, *, sink: FileSink | None,
          processor: EchoProcessor, runner_cfg: RunnerConfig | None = None,
          transactional_id: str | None = None, batch: bool = False,
          dlq_topic: str = "audit.dlq.v1", unavailable_calls: int = 0) -> Runner:
    """The conformance daemon; ``batch`` selects the Runner's batch mode; the decoder's first
    ``unavailable_calls`` calls raise Unavailable."""
    base = {"bootstrap.servers": bootstrap}
    return Runner(
        # A short session: a SIGKILLed member is noticed in seconds, not the default 45 s.
        consumer_conf=consumer_config(base, group, {"session.timeout.ms": "6000",
                                                    "heartbeat.interval.ms": "1000"},
                                      read_committed=transactional_id is not None),
        producer_conf=producer_config(base, {}),
        topics=[topic], processor=processor, sink=sink,
        config=runner_cfg or RunnerConfig(commit_interval_ms=500), dlq_topic=dlq_topic,
        decode=Flaky(decode_value, unavailable_calls),
        decode_batch=Flaky(decode_values, unavailable_calls) if batch else None,
        transactional_id=transactional_id,
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--out", type=Path)
    p.add_argument("--max-records", type=int, default=100)
    p.add_argument("--crash-after-flush", action="store_true")
    p.add_argument("--output-topic")
    p.add_argument("--transactional-id")
    p.add_argument("--kill-after-outputs", type=int, default=0)
    p.add_argument("--commit-interval-ms", type=int, default=500)
    p.add_argument("--shutdown-grace-s", type=float, default=10.0)
    p.add_argument("--idle-exit-s", type=float)
    p.add_argument("--batch", action="store_true", help="the Runner's batch mode")
    p.add_argument("--batch-size", type=int, default=1000)
    args = p.parse_args()
    sink = FileSink(args.out, args.max_records, crash_after_flush=args.crash_after_flush) \
        if args.out else None
    runner = build(args.bootstrap, args.topic, args.group, sink=sink,
                   processor=EchoProcessor(args.output_topic, args.kill_after_outputs),
                   runner_cfg=RunnerConfig(commit_interval_ms=args.commit_interval_ms,
                                           shutdown_grace_s=args.shutdown_grace_s,
                                           batch_size=args.batch_size),
                   transactional_id=args.transactional_id, batch=args.batch)
    runner.install_signal_handlers()
    stats = runner.run(idle_exit_s=args.idle_exit_s)
    print(json.dumps({"consumed": stats.consumed, "processed": stats.processed,
                      "dead_lettered": stats.dead_lettered, "commits": stats.commits}), flush=True)


if __name__ == "__main__":
    from pipeline.config import LogConfig
    from pipeline.logs import configure_logging

    configure_logging(LogConfig(format="json"))
    main()
