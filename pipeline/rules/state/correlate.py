"""Sigma v2.1 correlations over event time, for one (correlation, group key).

A window is half-open, ``[start, start + timespan)``, and starts at the event time of its
earliest hit. What a window measures: ``event_count`` its hits; ``value_count`` the distinct
values of the value field (hits without one count for nothing); ``temporal`` the distinct
referenced rules (all of them when the condition is empty); ``temporal_ordered`` whether the
referenced rules matched in the order listed, by event time (equal times count as in order:
CloudTrail times have one-second resolution).

*Monotone* correlations (only ``gt``/``gte``, and both temporal kinds) fire as soon as some
window containing the new hit satisfies them; the window reported is the earliest such one.
After firing, the group fires again only for a window that starts at or after the fired
window's end: hits before that end are consumed. Conditions with ``lt``/``lte``/``eq``/``neq``
depend on hits still to come, so they are decided when the window closes (watermark > end +
grace); those windows are chained: the first starts at the group's earliest hit, the next at
the first hit at or after the previous window's end, fired or not.

A hit is ``(event_time_ms, rank, event_id, value)``, ``rank`` the index of its rule in
``spec.rules``; a group keeps its hits sorted and ignores a repeated (time, rule, eventID)
(CloudTrail delivers some events twice).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence

from pipeline.rules.alert import alert_id
from pipeline.rules.model import AlertDraft, CorrelationSpec

Item = tuple[int, int, str, str | None]
Who = tuple[str, str, str, str]
"""(account, region, principal, source_ip)."""

NEVER_MS = -(2**62)
NO_WHO: Who = ("", "", "", "")

_OPS: Mapping[str, Callable[[int, int], bool]] = {
    "gt": lambda n, v: n > v, "gte": lambda n, v: n >= v, "lt": lambda n, v: n < v,
    "lte": lambda n, v: n <= v, "eq": lambda n, v: n == v, "neq": lambda n, v: n != v,
}


class Group:
    """Hits of one (correlation, group key) that can still join a window. ``who`` is taken
    from the last hit applied; ``fired_until_ms`` is the end of the last fired window."""

    __slots__ = ("fired_until_ms", "hits", "who")

    def __init__(self) -> None:
        self.hits: list[Item] = []
        self.fired_until_ms = NEVER_MS
        self.who = NO_WHO


def closes_at_end(spec: CorrelationSpec) -> bool:
    """True when the condition can only be decided once the window is closed."""
    if spec.kind == "temporal_ordered":
        return False
    return any(op not in ("gt", "gte") for op in spec.condition)


def insert(group: Group, item: Item) -> bool:
    """Add ``item`` in event-time order; False when it is a repeat or falls before the
    fired window's end (no window it could join may fire)."""
    hits = group.hits
    if not hits or hits[-1][0] < item[0]:
        if item[0] < group.fired_until_ms:
            return False
        hits.append(item)  # the usual case: in order
        return True
    if item[0] < group.fired_until_ms:
        return False
    at = bisect_left(hits, item[:3])
    if at < len(hits) and hits[at][:3] == item[:3]:
        return False
    hits.insert(at, item)
    return True


def holds(spec: CorrelationSpec, window: Sequence[Item]) -> bool:
    """Whether the hits of one window satisfy the correlation."""
    if spec.kind == "temporal_ordered":
        return _in_order(spec.rules, window)
    if spec.kind == "event_count":
        measured = len(window)
    elif spec.kind == "value_count":
        measured = len({item[3] for item in window if item[3] is not None})
    else:
        measured = len({spec.rules[item[1]] for item in window})
        if not spec.condition:
            return measured == len(set(spec.rules))
    return all(_OPS[op](measured, bound) for op, bound in spec.condition.items())


def _in_order(rules: Sequence[str], window: Sequence[Item]) -> bool:
    # Greedy: take the earliest hit of each rule in turn; optimal for a subsequence.
    position = 0
    for item in window:
        if rules[item[1]] == rules[position]:
            position += 1
            if position == len(rules):
                return True
    return False


def fire_on_hit(spec: CorrelationSpec, group: Group, time_ms: int) -> int | None:
    """For a monotone correlation, after a hit at ``time_ms`` was inserted: the start of the
    earliest window containing it that satisfies the correlation, or None."""
    hits, span = group.hits, spec.timespan_ms
    if not _could_hold(spec, len(hits)):
        return None
    low = bisect_left(hits, (max(time_ms - span + 1, group.fired_until_ms),))
    high = bisect_left(hits, (time_ms + 1,))
    if hits[-1][0] <= time_ms:
        # In order: the earliest window holds every hit the later ones hold.
        high = min(high, low + 1)
    previous = None
    for at in range(low, high):
        start_ms = hits[at][0]
        if start_ms == previous:
            continue
        previous = start_ms
        if holds(spec, hits[at:bisect_left(hits, (start_ms + span,))]):
            return start_ms
    return None


def _could_hold(spec: CorrelationSpec, hits: int) -> bool:
    """Cheap bound for monotone correlations: no window measures more than its hits."""
    if spec.kind == "temporal_ordered":
        return hits >= len(spec.rules)
    if spec.kind == "temporal" and not spec.condition:
        return hits >= len(set(spec.rules))
    return all(_OPS[op](hits, bound) for op, bound in spec.condition.items())


def take_window(spec: CorrelationSpec, group: Group, start_ms: int) -> list[Item]:
    """The hits of the fired window ``[start_ms, start_ms + timespan)``; consumes every hit
    before its end."""
    end_ms = start_ms + spec.timespan_ms
    end = bisect_left(group.hits, (end_ms,))
    window = group.hits[bisect_left(group.hits, (start_ms,)):end]
    del group.hits[:end]
    group.fired_until_ms = end_ms
    return window


def close_deadline_ms(spec: CorrelationSpec, group: Group, grace_ms: int) -> int | None:
    """For a close-decided correlation: the window closes once the watermark passes this."""
    if not group.hits:
        return None
    return group.hits[0][0] + spec.timespan_ms + grace_ms


def close_due(spec: CorrelationSpec, group: Group, watermark_ms: int,
              grace_ms: int) -> list[tuple[int, list[Item]]]:
    """Close every window of a close-decided group that the watermark has passed; the
    (start, hits) of those that satisfy the condition. Closed windows' hits are consumed."""
    fired = []
    while group.hits and watermark_ms > group.hits[0][0] + spec.timespan_ms + grace_ms:
        start_ms = group.hits[0][0]
        end = bisect_left(group.hits, (start_ms + spec.timespan_ms,))
        window = group.hits[:end]
        del group.hits[:end]
        if holds(spec, window):
            fired.append((start_ms, window))
    return fired


def prune(spec: CorrelationSpec, group: Group, watermark_ms: int, grace_ms: int) -> bool:
    """Drop the hits of a monotone group that no window still open can hold (older than
    watermark - grace - timespan); True when any went."""
    cutoff_ms = max(watermark_ms - grace_ms - spec.timespan_ms + 1, group.fired_until_ms)
    if not group.hits or group.hits[0][0] >= cutoff_ms:
        return False
    del group.hits[:bisect_left(group.hits, (cutoff_ms,))]
    return True


def expiry_ms(spec: CorrelationSpec, group: Group, grace_ms: int) -> int:
    """For a monotone group: once the watermark passes this, no hit it holds can join an
    open window and no accepted hit can fall before its fired window's end: it is spent."""
    if not group.hits:
        return group.fired_until_ms + grace_ms
    return max(group.hits[-1][0] + spec.timespan_ms, group.fired_until_ms) + grace_ms


def newest_ms(group: Group) -> int:
    """The group's age for eviction (independent of when it was pruned)."""
    newest = group.hits[-1][0] if group.hits else NEVER_MS
    return max(newest, group.fired_until_ms - 1)


def correlation_draft(correlation_id: str, spec: CorrelationSpec, key: str, start_ms: int,
                      window: Sequence[Item], who: Who, sample_size: int) -> AlertDraft:
    """The alert for a fired window (a correlation alert has no updates).

    Its id is made from the timespan-aligned bucket of the window start, not the start
    itself: the start of a window that fires early depends on which hits had arrived, and
    hits of one group key from several events partitions arrive in a different interleaving
    after a restart. A group fires at most once per bucket (the next window starts at or
    after this one's end), so the bucket names the alert."""
    present = {spec.rules[item[1]] for item in window}
    contributed = tuple(dict.fromkeys(rule for rule in spec.rules if rule in present))
    bucket_ms = start_ms // spec.timespan_ms * spec.timespan_ms
    return AlertDraft(
        alert_id=alert_id(correlation_id, key, bucket_ms), update=0, kind="correlation",
        rule_id=correlation_id, key=key, window_start_ms=start_ms, count=len(window),
        first_seen_ms=window[0][0], last_seen_ms=window[-1][0],
        sample_event_ids=tuple(item[2] for item in window[:sample_size]),
        title=spec.meta.title, severity=spec.meta.severity, account=who[0], region=who[1],
        principal=who[2], source_ip=who[3], rule_ids=contributed)
