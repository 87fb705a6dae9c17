"""Retro-hunt (``trailpipe replay --rules PATH``, issue 11 item 6): the alerter's rules over the
replayed records, by the alerter's own code.

Contract.

* **Rules.** :func:`load_hunt_rules`: the rules a path names (a Sigma or native rule file, or a
  directory of either or both, as ``trailpipe rules eval --rules PATH`` loads them, without the
  default pack), or with no path the configured rule set (``[alerter]``, as the alerter daemon
  loads it). Any problem is a ValueError listing every one.
* **One engine.** :func:`hunt` runs the live alerter's
  :class:`~consumers.alerter.processor.AlerterProcessor` in memory: stage 1 (its
  :class:`~consumers.alerter.match.BatchMatcher`) over batches of the replayed rows, then its
  stage 2 (threshold/dedup windows and correlations) over the hits each batch makes, then over
  the chained hits fired correlations make, as the live hits topic would carry them. The rows
  must be in replay order (:func:`pipeline.replay.canonical.sorted_rows`: by event time), so
  windows see event time advance as live. A replay batch (``batch_rows``) may span far more
  event time than a live poll, so the hits a batch makes go to stage 2 ordered by event time
  (an aggregated hit by its newest match, which is what advances the watermark): none of a
  sorted replay is late. Every hit goes to one hits partition (one Stage): live, the hits
  topic spreads keys over partitions, which changes only what counts as late. Rows without an
  event time come last; the alerter dates their hits by the Kafka timestamp, which a replay's
  rows do not carry, so a hunt dates them at the newest event time of the replay.
* **End of the replay.** After the last batch an end-of-input hit past every window closes the
  windows decided at their close (Sigma ``lt``/``lte``/``eq``/``neq`` correlations), as
  ``trailpipe rules eval`` does; the live alerter would close them when later traffic came.
* **Determinism.** Alerts are the alerter's Alert records (``schemas/Alert.v1.avsc``), opens
  (``update`` 0) and updates in the order the alerter emits them. Their ids are already
  deterministic (rule, key, window start); the one wall-clock field, ``created_ms``, is for a
  hunt the alert's ``last_seen_ms`` (the event time of its newest match: when an alerter
  keeping pace would have created it). So the same replay gives the same alerts, byte for
  byte (:mod:`pipeline.replay.hunt_out`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from consumers.alerter.hits import RawDecoder, hit_record, parse_hit
from consumers.alerter.processor import AlerterProcessor, Topics
from pipeline.config import Config
from pipeline.model import KafkaRecord
from pipeline.rules.alert import decode_alert
from pipeline.rules.model import Hit
from pipeline.rules.ruleset import RuleSet, load_ruleset

# Names of the processor's topics inside a hunt: never produced to, only told apart.
TOPICS = Topics(events="hunt.events", insights="hunt.insights", hits="hunt.hits",
                alerts="hunt.alerts", state="hunt.state", health="hunt.health")
DEFAULT_BATCH_ROWS = 10_000
_END_OF_INPUT_MS = 2**62
"""Event time of the end-of-input hit, past every window's end + grace."""


def load_hunt_rules(cfg: Config, path: Path | None) -> RuleSet:
    """The rules of ``path`` (file or directory, Sigma and/or native), or the configured rule
    set when None. Raises ValueError listing every problem (a missing path, rules that do not
    load, no rule at all)."""
    if path is None:
        rules = load_ruleset(cfg.alerter)
        where = "the configured rules ([alerter])"
    else:
        if not path.exists():
            raise ValueError(f"--rules {path}: no such file or directory")
        from pipeline.cli.rules_load import select  # loads pySigma: only when hunting

        rules = select(cfg.alerter, [path], configured=False, pack=False).ruleset
        where = f"--rules {path}"
    if rules.problems:
        raise ValueError(f"{where}: rules do not load:\n  " + "\n  ".join(rules.problems))
    if not rules.rules:
        raise ValueError(f"{where}: no rules found")
    return rules


@dataclass(frozen=True, slots=True)
class HuntResult:
    """``alerts``: Alert datums in emission order; ``stats``: the processor's counters (``hits``:
    those stage 2 applied, chained ones included) plus the rule and correlation counts."""

    alerts: list[dict[str, Any]]
    stats: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        s = self.stats
        return {"rules": s["rules"], "correlations": s["correlations"],
                "events": s["events"], "hits": s["hits"], "alerts": s["alerts"],
                "alert_updates": s["updates"], "late_dropped": s["state"].get("late_dropped", 0),
                "rule_errors": s["rule_errors"]}


def hunt(table: pa.Table, rules: RuleSet, *, grace_ms: int, max_keys: int, sample_size: int,
         batch_rows: int = DEFAULT_BATCH_ROWS) -> HuntResult:
    """Every alert the alerter makes of ``table`` (a decoded events table in replay order,
    see the module contract). ``grace_ms``, ``max_keys``, ``sample_size``: ``[alerter]``'s."""
    newest_ms = 0
    processor = AlerterProcessor(rules, TOPICS, lambda _p: (), grace_ms=grace_ms,
                                 max_keys=max_keys, sample_size=sample_size,
                                 clock=lambda: 0)  # created_ms is set below
    alerts: list[dict[str, Any]] = []
    for batch in batches(table, batch_rows):
        newest_ms = max(newest_ms, _newest_ms(batch))
        out = list(processor.process_batch(_events_input(batch, newest_ms)))
        alerts.extend(_stage_two(processor, [r for r in out if r.topic == TOPICS.hits]))
    end = Hit(kind="correlation", target="", key="", rule_id="",
              event_time_ms=_END_OF_INPUT_MS, event_id="")
    alerts.extend(_stage_two(processor, [hit_record(end, TOPICS.hits)]))
    stats = {"rules": len(rules.rules), "correlations": len(rules.correlations),
             **processor.stats()}
    stats["hits"] -= 1  # the end-of-input hit
    return HuntResult(alerts, stats)


def batches(table: pa.Table, max_rows: int) -> Iterator[pa.Table]:
    """Consecutive slices of ``table`` of at most ``max_rows`` rows."""
    for start in range(0, table.num_rows, max_rows):
        yield table.slice(start, max_rows)


def _newest_ms(batch: pa.Table) -> int:
    newest = pc.max(batch.column("eventTimeMs")).as_py()
    return int(newest) if newest is not None else 0


def _events_input(batch: pa.Table, now_ms: int) -> pa.Table:
    """``batch`` as the processor reads an events batch: with the topic it came from and a
    Kafka timestamp, which hits use only for rows without an event time. A replay's rows have
    none: the event time stands in, and ``now_ms`` where there is none either."""
    n = batch.num_rows
    table = batch.append_column("_topic", pa.array([TOPICS.events] * n, pa.string()))
    if "_timestamp_ms" not in table.column_names:
        stamps = pc.fill_null(table.column("eventTimeMs").cast(pa.int64()), now_ms)
        table = table.append_column("_timestamp_ms", stamps)
    return table


def _stage_two(processor: AlerterProcessor, hits: list[KafkaRecord]) -> list[dict[str, Any]]:
    """Feed ``hits`` to stage 2 as one hits batch, then the chained hits it makes, until none;
    the Alert datums emitted, in order."""
    alerts: list[dict[str, Any]] = []
    while hits:
        hits.sort(key=_hit_time_ms)  # stable: hits of one time stay in the matcher's order
        out = list(processor.process_batch(_hits_input(hits)))
        for record in out:
            if record.topic == TOPICS.alerts:
                alert = decode_alert(record.value or b"")
                alerts.append({**alert, "created_ms": alert["last_seen_ms"]})
        hits = [r for r in out if r.topic == TOPICS.hits]
    return alerts


def _hit_time_ms(record: KafkaRecord) -> int:
    """The event time a hit record advances stage 2's watermark to."""
    hit = parse_hit(record.value or b"")
    return hit.event_time_ms if hit.last_time_ms is None else hit.last_time_ms


def _hits_input(hits: list[KafkaRecord]) -> pa.Table:
    """Hit records as the processor reads a batch of the hits topic (all in partition 0)."""
    values = [r.value or b"" for r in hits]
    table = RawDecoder()(values).table
    n = table.num_rows
    table = table.append_column("_topic", pa.array([TOPICS.hits] * n, pa.string()))
    return table.append_column("_partition", pa.array([0] * n, pa.int32()))
