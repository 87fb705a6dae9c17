"""The one poll loop. Every daemon is a Processor and a Sink handed to a :class:`Runner`.

Commit discipline, in this order, every cycle: flush the sink → flush the producer (outputs and
dead letters) → commit offsets. The committed offset per partition is
``min(last_processed + 1, oldest offset the processor still holds)`` (:mod:`pipeline.offsets`), so
a crash re-reads what was not yet durable. In transactional mode the outputs, dead letters and
offsets are one Kafka transaction; any error in it aborts, rebuilds the producer and re-reads.

When the sink cannot flush within its retry budget the Runner applies backpressure: it discards
the unflushed buffer, rewinds the partitions to their committed offsets, pauses them, keeps
polling (so the group membership stays alive) and resumes after ``backpressure_pause_ms``.
Poison records (decode or process errors) go to the DLQ and count as processed.

Two modes, with the same offsets, commit order, transactions, backpressure and rebalance
handling: per record (a :class:`~pipeline.model.Processor` gets one decoded
:class:`~pipeline.model.Event` at a time) and batch (with ``decode_batch``: each poll is decoded
at once into a ``pyarrow.Table`` with the Kafka coordinates as columns, and a
:class:`~pipeline.model.BatchProcessor` gets the table; values that do not decode are
dead-lettered, and a table the processor fails on is bisected down to the poison rows). Without
a processor the decoded events (per record) or the table (batch) go straight to the sink.

A processor may also have ``before_commit() -> Iterable[output]``: outputs due once per commit
cycle rather than per batch (a state changelog); they are routed first, so they are part of the
cycle's flush and transaction. And ``assigned(partitions)``: told the partitions this member
owns after every assignment, revocation, loss and rewind (state that must be watched even
while its partitions send nothing, e.g. silent sources).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Collection
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from pipeline.config import RunnerConfig
from pipeline.deadletter import dead_letter_for
from pipeline.intake import BatchDecoders, Decoder, Intake, RunStats, identity
from pipeline.logs import get_logger
from pipeline.metrics.registry import DaemonMetrics
from pipeline.model import (
    BatchProcessor,
    Event,
    KafkaBatch,
    KafkaRecord,
    Processor,
    Sink,
    TopicPartitionKey,
    Unavailable,
)
from pipeline.offsets import OffsetLedger
from pipeline.producer import DeliveryError, KafkaProducer
from pipeline.refusals import FatalRunnerError as FatalRunnerError
from pipeline.refusals import consume_errors, refused_outputs

log = get_logger("pipeline.runner")



class Runner:
    """Consumes ``topics`` in a group, feeds the processor, routes outputs, commits safely.

    Outputs that are :class:`KafkaRecord` or :class:`KafkaBatch` go to the Runner's producer;
    any other output goes to ``sink``. ``transactional_id`` switches on exactly-once mode for
    Kafka outputs.
    ``decode_batch`` switches on batch mode (``processor`` is then a BatchProcessor or None).
    ``metrics`` is told each poll, dead letter, commit cycle, flush failure and assignment.
    """

    def __init__(self, *, consumer_conf: dict[str, Any], producer_conf: dict[str, Any],
                 topics: list[str], processor: Processor | BatchProcessor | None,
                 sink: Sink | None, config: RunnerConfig, dlq_topic: str,
                 decode: Decoder = identity, decode_batch: BatchDecoders | None = None,
                 transactional_id: str | None = None,
                 metrics: DaemonMetrics | None = None) -> None:
        if processor is None and sink is None:
            raise ValueError("a Runner needs a processor, a sink, or both")
        self._cfg = config
        self._topics = topics
        self._processor = processor
        self._sink = sink
        self._consumer = Consumer(consumer_conf)
        self._producer = KafkaProducer(producer_conf, transactional_id)
        self._ledger = OffsetLedger()
        self.stats = RunStats()
        self.metrics = metrics or DaemonMetrics("runner", str(consumer_conf.get("group.id")))
        self.metrics.watch(self.stats)
        self._dlq_topic = dlq_topic
        self._intake = Intake(processor=processor, decode=decode, decode_batch=decode_batch,
                              ledger=self._ledger, stats=self.stats, route=self._route,
                              dead_letter=self._dead_letter)
        self._assigned: set[TopicPartitionKey] = set()
        self._paused_until_s: float | None = None
        self._stop = False
        self._closing = False
        self._last_commit_s = time.monotonic()
        self._last_activity_s: float | None = None  # last record or assignment; None: never

    def request_stop(self) -> None:
        """Ask the loop to stop; it then flushes and commits within ``shutdown_grace_s``."""
        self._stop = True

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop the loop cleanly; a second signal restores the default action."""
        def handler(signum: int, _frame: Any) -> None:
            log.info("stop_requested", signal=signal.Signals(signum).name)
            self.request_stop()
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self, *, max_messages: int | None = None, idle_exit_s: float | None = None) -> RunStats:
        """Poll until stopped, ``max_messages`` consumed, or ``idle_exit_s`` without a record
        since the last record or partition assignment (idle time counts only once the group
        has assigned partitions to this member). Raises :class:`FatalRunnerError` on a fatal
        client error (after closing the clients)."""
        self._consumer.subscribe(self._topics, on_assign=self._on_assign,
                                 on_revoke=self._on_revoke, on_lost=self._on_lost)
        log.info("runner_started", topics=self._topics, transactional=self._producer.transactional)
        try:
            while not self._stop:
                if max_messages is not None and self.stats.consumed >= max_messages:
                    break
                if self._poll_batch():
                    self._last_activity_s = time.monotonic()
                elif self._idle_for(idle_exit_s):
                    break
                self._maybe_resume()
                if self._commit_due():
                    self._commit_cycle()
            self._shutdown()
        finally:
            self._closing = True
            self.metrics.stopped()
            self._consumer.close()
        log.info("runner_stopped", **self._stats_dict())
        return self.stats

    def _idle_for(self, idle_exit_s: float | None) -> bool:
        if idle_exit_s is None or self._last_activity_s is None:
            return False
        return time.monotonic() - self._last_activity_s >= idle_exit_s

    def _stats_dict(self) -> dict[str, int]:
        s = self.stats
        return {"consumed": s.consumed, "processed": s.processed, "dead_lettered": s.dead_lettered,
                "outputs": s.outputs, "commits": s.commits, "rewinds": s.rewinds}

    def _poll_batch(self) -> int:
        """Consume one batch and process it; returns how many records it held."""
        msgs = self._consumer.consume(self._cfg.batch_size, self._cfg.poll_timeout_ms / 1000)
        good = [msg for msg in msgs if msg.error() is None]
        if len(good) < len(msgs):
            consume_errors(msgs)
        if good:
            try:
                self._intake.take(good)
            except Unavailable as exc:  # not the records' fault: read them again later
                log.warning("input_unavailable", error=str(exc), error_type=type(exc).__name__)
                for msg in good:  # so the rewind also covers partitions not processed yet
                    self._ledger.seen((msg.topic() or "", msg.partition() or 0), msg.offset() or 0)
                self._rewind("input_unavailable", pause=True)
        self.metrics.polled(self._intake.counted if good else [])
        self._producer.poll()
        if self._processor is not None:
            for item in self._processor.tick(int(time.time() * 1000)):
                self._route(item, None)
        return len(good)

    def _dead_letter(self, msg: Message, exc: Exception) -> None:
        self._producer.produce_record(dead_letter_for(msg, exc, self._dlq_topic))
        self.metrics.dead_lettered(exc)

    def _route(self, item: Any, source: Event | None) -> None:
        self.stats.outputs += 1
        if isinstance(item, KafkaRecord):
            self._producer.produce_record(item)
        elif isinstance(item, KafkaBatch):
            self._producer.produce_batch(item)
            self.stats.outputs += len(item) - 1
        elif self._sink is not None:
            self._sink.add(item, source)
        else:
            raise TypeError(f"no sink for output of type {type(item).__name__}")

    def _commit_due(self) -> bool:
        if self._paused_until_s is not None:
            return False
        if self._sink is not None and self._sink.should_flush(int(time.time() * 1000)):
            return True
        elapsed_ms = (time.monotonic() - self._last_commit_s) * 1000
        return elapsed_ms >= self._cfg.commit_interval_ms and self._ledger.has_uncommitted()

    def _commit_cycle(self, *, retry: bool = True, pause: bool = True) -> bool:
        """Flush sink → flush producer → commit offsets. Returns False when it had to rewind."""
        self._last_commit_s = time.monotonic()
        ok = self._flush_and_commit(retry=retry, pause=pause)
        self.metrics.cycle(time.monotonic() - self._last_commit_s, ok)
        return ok

    def _flush_and_commit(self, *, retry: bool, pause: bool) -> bool:
        before_commit = getattr(self._processor, "before_commit", None)
        if before_commit is not None:
            for item in before_commit():
                self._route(item, None)
        if self._sink is not None and not self._flush_sink(retry):
            self._rewind("sink_flush_failed", pause=pause)
            return False
        plan = self._ledger.commit_plan(self._held())
        timeout_s = self._cfg.shutdown_grace_s if self._closing else 30.0
        try:
            if self._producer.transactional:
                self._producer.commit(plan, self._consumer.consumer_group_metadata(), timeout_s)
            else:
                self._producer.flush(timeout_s)
                self._commit_offsets(plan)
        except (KafkaException, DeliveryError) as exc:
            refused = refused_outputs(exc)
            if refused is not None:
                raise refused from exc
            # Outputs of this cycle are not durable: abort (transactional) and re-read them.
            log.warning("outputs_failed", error=str(exc),
                        transactional=self._producer.transactional)
            self.metrics.flush_failed(exc)
            self._rewind("outputs_failed", pause=pause)
            return False
        self._ledger.mark_committed(plan)
        if plan:
            self.stats.commits += 1
            log.info("offsets_committed", partitions=len(plan),
                     offsets={f"{t}[{p}]": o for (t, p), o in sorted(plan.items())})
        return True

    def _held(self) -> dict[TopicPartitionKey, int]:
        """Per partition, the oldest offset the processor or the sink still holds."""
        held = dict(self._processor.pending_low_offsets()) if self._processor else {}
        for tp, offset in (self._sink.held() if self._sink else {}).items():
            held[tp] = min(offset, held.get(tp, offset))
        return held

    def _drop(self, tps: Collection[TopicPartitionKey]) -> None:
        if self._processor is not None:
            self._processor.drop(tps)
        if self._sink is not None:
            self._sink.release(tps)

    def _commit_offsets(self, plan: dict[TopicPartitionKey, int]) -> None:
        """Synchronous commit. A failed commit is not data loss (the sink already holds the
        records): it is logged and the next cycle commits further."""
        if not plan:
            return
        try:
            self._consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in plan.items()], asynchronous=False
            )
        except KafkaException as exc:
            if exc.args and exc.args[0].fatal():
                raise FatalRunnerError(str(exc)) from exc
            log.warning("commit_failed", error=str(exc))

    def _flush_sink(self, retry: bool) -> bool:
        """Flush with exponential backoff within the retry budget; False when it gave up."""
        assert self._sink is not None
        deadline_s = time.monotonic() + self._cfg.flush_retry_budget_ms / 1000
        backoff_s = self._cfg.flush_retry_backoff_ms / 1000
        while True:
            try:
                self._sink.flush()
                return True
            except Exception as exc:  # any sink failure: retry, then backpressure
                log.warning("sink_flush_failed", error=str(exc), error_type=type(exc).__name__)
                self.metrics.flush_failed(exc)
                if not retry or time.monotonic() + backoff_s > deadline_s:
                    return False
                time.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 2.0)

    def _rewind(self, reason: str, *, pause: bool) -> None:
        """Drop everything not durable and seek back to the committed offsets. In
        transactional mode that includes the open transaction: its outputs and dead letters
        would otherwise be committed with the re-read copies by the next cycle."""
        self.stats.rewinds += 1
        if self._producer.transactional:
            self._producer.abort_and_rebuild(10)
        if self._sink is not None:
            self._sink.discard()
        self._drop(self._assigned)
        targets = self._ledger.rewind_targets(self._assigned)
        tps = [TopicPartition(t, p, o) for (t, p), o in targets.items()]
        for tp in tps:
            try:
                self._consumer.seek(tp)
            except KafkaException as exc:
                log.warning("seek_failed", partition=f"{tp.topic}[{tp.partition}]", error=str(exc))
        if pause and self._assigned:
            self._consumer.pause([TopicPartition(t, p) for t, p in self._assigned])
            self._paused_until_s = time.monotonic() + self._cfg.backpressure_pause_ms / 1000
        self._tell_assigned()
        log.warning("rewound", reason=reason, partitions=len(self._assigned), paused=pause)

    def _tell_assigned(self) -> None:
        self.metrics.assigned(self._assigned)
        assigned = getattr(self._processor, "assigned", None)
        if assigned is not None:
            assigned(frozenset(self._assigned))

    def _maybe_resume(self) -> None:
        if self._paused_until_s is None or time.monotonic() < self._paused_until_s:
            return
        self._paused_until_s = None
        self._consumer.resume([TopicPartition(t, p) for t, p in self._assigned])
        log.info("backpressure_resumed", partitions=len(self._assigned))

    def _shutdown(self) -> None:
        """One last cycle without retries, bounded by ``shutdown_grace_s``."""
        self._closing = True
        if self._paused_until_s is None:
            self._commit_cycle(retry=False)
        self._producer.close(self._cfg.shutdown_grace_s)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned |= {(tp.topic, tp.partition) for tp in partitions}
        self._tell_assigned()
        # A backpressure pause stays in force across a rebalance (librdkafka keeps paused
        # partitions paused); _maybe_resume resumes every assigned partition when it ends.
        self._last_activity_s = time.monotonic()
        log.info("partitions_assigned", partitions=sorted(f"{tp.topic}[{tp.partition}]"
                                                          for tp in partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        if not self._closing and self._paused_until_s is None:
            self._commit_cycle(pause=False)
        self._forget(revoked)
        log.info("partitions_revoked", partitions=len(revoked))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = {(tp.topic, tp.partition) for tp in partitions}
        self._rewind("partitions_lost", pause=False)
        self._forget(lost)
        log.warning("partitions_lost", partitions=len(lost))

    def _forget(self, tps: set[TopicPartitionKey]) -> None:
        self._drop(tps)
        self._ledger.forget(tps)
        self._assigned -= tps
        self._tell_assigned()
