"""Threshold/dedup windows of single-event rules.

A rule's matches with one dedup key are counted in windows aligned to the rule's dedup
period: ``window_start_ms = floor(event_time_ms / period) * period``. Aligned windows make
the alert id (rule id, key, window start) a function of event time alone, so a restart that
changes the interleaving of source partitions cannot change it. The hit that brings the
count to the threshold opens the alert (update 0); later hits in the window make it pending,
and the stage reports one coalesced update per pending window and batch.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.rules.alert import alert_id
from pipeline.rules.model import AlertDraft, Hit, RuleMeta

WindowId = tuple[str, str, int]
"""(rule id, dedup key, window start ms)."""


class Window:
    """One (rule, dedup key, aligned window): the running count and what the alert shows.
    ``update`` counts the updates already reported; ``pending`` says hits arrived since."""

    __slots__ = ("account", "context", "count", "first_ms", "last_ms", "pending", "principal",
                 "region", "samples", "severity", "source_ip", "title", "update")

    def __init__(self, hit: Hit, meta: RuleMeta) -> None:
        self.count = 0
        self.first_ms = hit.event_time_ms
        self.last_ms = hit.event_time_ms
        self.samples: list[str] = []
        self.update = 0
        self.pending = False
        self.account = hit.account
        self.region = hit.region
        self.principal = hit.principal
        self.source_ip = hit.source_ip
        self.title = hit.title or meta.title
        self.severity = hit.severity
        self.context: Mapping[str, str] = hit.context


def window_id(hit: Hit, meta: RuleMeta) -> WindowId:
    period_ms = meta.dedup_period_ms
    return (hit.target, hit.key, hit.event_time_ms // period_ms * period_ms)


def window_end_ms(wid: WindowId, meta: RuleMeta) -> int:
    """Exclusive end of the window."""
    return wid[2] + meta.dedup_period_ms


def add_hit(window: Window, hit: Hit, meta: RuleMeta, sample_size: int) -> bool:
    """Count ``hit`` (``hit.count`` matches) into ``window``; True when this hit opens the
    alert (reaches the threshold). Hits after the opening mark the window pending."""
    before = window.count
    window.count += hit.count
    window.first_ms = min(window.first_ms, hit.event_time_ms)
    last_ms = hit.event_time_ms if hit.last_time_ms is None else hit.last_time_ms
    window.last_ms = max(window.last_ms, last_ms)
    for event_id in (hit.event_id, *hit.more_ids):
        if len(window.samples) >= sample_size:
            break
        window.samples.append(event_id)
    if before < meta.threshold <= window.count:
        return True
    if before >= meta.threshold:
        window.pending = True
    return False


def window_draft(wid: WindowId, window: Window, update: int) -> AlertDraft:
    """The alert (``update`` 0) or its ``update``-th update, with the running totals."""
    target, key, start_ms = wid
    return AlertDraft(
        alert_id=alert_id(target, key, start_ms), update=update, kind="rule",
        rule_id=target, key=key, window_start_ms=start_ms, count=window.count,
        first_seen_ms=window.first_ms, last_seen_ms=window.last_ms,
        sample_event_ids=tuple(window.samples), title=window.title,
        severity=window.severity, account=window.account, region=window.region,
        principal=window.principal, source_ip=window.source_ip, context=window.context)
