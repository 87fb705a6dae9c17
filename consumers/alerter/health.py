"""Pipeline health records (``[topics] health``: JSON objects from the archiver, the alerter,
the notifier, ...) as alerts: every record whose ``status`` is not ``recovered`` is a match of
the built-in rule :data:`HEALTH_RULE`, deduplicated per component, status and stage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from pipeline.rules.model import HOUR_MS, Hit, RuleMeta

HEALTH_RULE = RuleMeta(
    id="trailpipe.pipeline.health", title="trailpipe pipeline health", severity="high",
    source="builtin:consumers.alerter.health@1", tags=("trailpipe.health",),
    dedup_period_ms=HOUR_MS,
    description="A trailpipe component reported a problem on the health topic (a failing "
                "upload or delivery, a rule that raises, the alerter's state cap reached).")
QUIET = frozenset({"recovered", "ok"})
SERIOUS = frozenset({"failing", "state_cap_reached", "route_disabled"})


def health_hits(values: Sequence[bytes], partitions: Sequence[int], offsets: Sequence[int],
                produced: Sequence[int | None], topic: str) -> list[Hit]:
    """Hits of :data:`HEALTH_RULE` for the health records given. Raises ValueError for a
    record that is not a JSON object (the Runner isolates and dead-letters it)."""
    out = []
    for value, partition, offset, ts_ms in zip(values, partitions, offsets, produced,
                                               strict=True):
        record = orjson.loads(value)
        if not isinstance(record, dict):
            raise ValueError("a health record is a JSON object")
        status = str(record.get("status") or "unknown")
        if status in QUIET:
            continue
        component = str(record.get("component") or "unknown")
        where = str(record.get("stage") or record.get("rule_id") or record.get("route") or "")
        at_ms = record.get("at_ms")
        out.append(Hit(
            kind="rule", target=HEALTH_RULE.id, key=f"{component}|{status}|{where}",
            rule_id=HEALTH_RULE.id,
            event_time_ms=at_ms if isinstance(at_ms, int) else ts_ms or 0,
            event_id=f"health:{topic}:{partition}:{offset}",
            title=f"trailpipe {component}: {status}" + (f" ({where})" if where else ""),
            severity="high" if status in SERIOUS else "medium",
            context=_context(record), produced_ms=ts_ms or 0))
    return out


def _context(record: dict[str, Any]) -> dict[str, str]:
    return {str(k): (v if isinstance(v, str) else orjson.dumps(v).decode())[:500]
            for k, v in list(record.items())[:20]}
