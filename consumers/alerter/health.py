"""Pipeline health records (``[topics] health``: Avro ``Health`` records from the archiver, the
alerter, the notifier, the aggregator's health monitor, ...) as alerts: every record whose
``status`` is not quiet (:func:`pipeline.health.record.is_quiet`) is a match of the built-in
rule :data:`HEALTH_RULE`, deduplicated per component, status, subject and stage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.health.record import decode_health, is_quiet
from pipeline.rules.model import HOUR_MS, Hit, RuleMeta

HEALTH_RULE = RuleMeta(
    id="trailpipe.pipeline.health", title="trailpipe pipeline health", severity="high",
    source="builtin:consumers.alerter.health@1", tags=("trailpipe.health",),
    dedup_period_ms=HOUR_MS,
    description="A trailpipe component reported a problem on the health topic (a failing "
                "upload or delivery, a rule that raises, the alerter's state cap reached, a "
                "silent source, consumer lag or dead letters above their thresholds).")
SERIOUS = frozenset({"failing", "state_cap_reached", "route_disabled", "source_silent",
                     "lag_high"})
"""Statuses alerted as ``high``; any other problem is ``medium``."""
MAX_CONTEXT_CHARS = 500


def health_hits(values: Sequence[bytes], partitions: Sequence[int], offsets: Sequence[int],
                produced: Sequence[int | None], topic: str) -> list[Hit]:
    """Hits of :data:`HEALTH_RULE` for the health records given. Raises
    :class:`~pipeline.events.records.RecordDecodeError` for a value that is not a Health
    record (the Runner isolates and dead-letters it)."""
    out = []
    for value, partition, offset, ts_ms in zip(values, partitions, offsets, produced,
                                               strict=True):
        record = decode_health(value)
        status, component = record["status"], record["component"]
        if is_quiet(status):
            continue
        subject, stage = record["subject"], record["stage"] or ""
        out.append(Hit(
            kind="rule", target=HEALTH_RULE.id, key=f"{component}|{status}|{subject}|{stage}",
            rule_id=HEALTH_RULE.id, event_time_ms=record["at_ms"],
            event_id=f"health:{topic}:{partition}:{offset}",
            title=f"trailpipe {component}: {status}" + (f" ({stage})" if stage else "")
            + f" on {subject}",
            severity="high" if status in SERIOUS else "medium",
            context=_context(record), produced_ms=ts_ms or 0))
    return out


def _context(record: dict[str, Any]) -> dict[str, str]:
    """The record flattened to text: its own fields, then details, then metrics."""
    own = {k: str(record[k]) for k in ("component", "status", "subject", "message", "stage",
                                         "host", "at_ms") if record[k] is not None}
    metrics = {k: f"{v:g}" for k, v in record["metrics"].items()}
    merged = dict(own)
    for k, v in [*record["details"].items(), *metrics.items()]:
        merged.setdefault(k, v)
    return {k: v[:MAX_CONTEXT_CHARS] for k, v in merged.items()}
