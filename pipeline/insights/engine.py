"""``InsightEngine``: the Insights of one events partition, minute by minute.

The aggregator calls :meth:`InsightEngine.close_minute` once per closed minute (ascending) with
the write management call counts of the keys that had calls; every other known key had none.
Only keys with calls or with an open insight are touched, so an idle key costs nothing until it
is next seen (its zero minutes are implied, see :mod:`pipeline.insights.baseline`). The
semantics (tests, defaults, life of an insight) are in :mod:`pipeline.insights.detector`.

Persistence: :meth:`changes` returns the entries changed since its last call, for a compacted
changelog written in the same transaction as the events; :meth:`restore` loads them back (in any
order, latest value per key) so a restart neither relearns the baselines nor loses an open
insight, and produces the same events as an uninterrupted run.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from pipeline.insights.baseline import ZERO, Baseline, MinuteStats
from pipeline.insights.codec import (
    bucket_key,
    decode_bucket,
    decode_meta,
    encode_bucket,
    encode_meta,
    meta_key,
    parse_key,
)
from pipeline.insights.config import MINUTE_MS, InsightsConfig
from pipeline.insights.detector import OpenInsight, anomalous
from pipeline.insights.event import CALL_RATE, END, ERROR_RATE, START, InsightKey, insight_event

KINDS = (CALL_RATE, ERROR_RATE)
_UNKNOWN_MS = 1 << 62
"""first_ms of a key restored from its buckets before its meta entry arrived."""


class _Key:
    __slots__ = ("baseline", "opened")

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline
        self.opened: list[OpenInsight | None] = [None, None]  # call rate, error rate


class InsightEngine:
    """Baselines and open insights of every (account, region, eventSource, eventName) key of
    one partition. Not thread-safe."""

    def __init__(self, cfg: InsightsConfig) -> None:
        self._cfg = cfg
        self._learn_ms = cfg.learn_period_ms
        self._keys: OrderedDict[InsightKey, _Key] = OrderedDict()  # least recently active first
        self._open: set[InsightKey] = set()
        self._dirty_meta: set[InsightKey] = set()
        self._dirty_buckets: set[tuple[InsightKey, int]] = set()
        self._deleted: set[str] = set()
        self._last_ms: int | None = None
        self._started = self._ended = self._evicted = 0

    def close_minute(self, minute_ms: int, stats: Mapping[InsightKey, MinuteStats]
                     ) -> list[dict[str, Any]]:
        """Account the minute ``[minute_ms, minute_ms + 60 s)`` and return the Insights events
        that start or end with it, ordered by key, insight type, then End before Start. An End
        carries the eventTime of the first normal minute, ``end_after_minutes - 1`` minutes
        earlier. Raises ValueError if ``minute_ms`` is not a whole minute or not after the
        previous call's."""
        if minute_ms % MINUTE_MS or (self._last_ms is not None and minute_ms <= self._last_ms):
            raise ValueError(f"minute {minute_ms} is not a whole minute after {self._last_ms}")
        self._last_ms = minute_ms
        if not self._cfg.enabled:
            return []
        idle_open = sorted(k for k in self._open if k not in stats)
        events: list[dict[str, Any]] = []
        for key, minute in stats.items():
            events += self._step(key, minute_ms, minute)
        for key in idle_open:
            events += self._step(key, minute_ms, ZERO)
        events.sort(key=_order)
        return events

    def changes(self) -> dict[str, bytes | None]:
        """State changed since the last call: changelog key -> value (None = delete). Keys are
        described in :mod:`pipeline.insights.codec`."""
        out: dict[str, bytes | None] = dict.fromkeys(self._deleted)
        for key in self._dirty_meta:
            st = self._keys.get(key)
            if st is not None:
                out[meta_key(key)] = encode_meta(st.baseline.first_ms, st.opened)
        for key, index in self._dirty_buckets:
            st = self._keys.get(key)
            bucket = st.baseline.buckets.get(index) if st is not None else None
            if bucket is not None:
                out[bucket_key(key, index)] = encode_bucket(bucket)
        self._deleted.clear()
        self._dirty_meta.clear()
        self._dirty_buckets.clear()
        return out

    def restore(self, key: str, value: bytes | None) -> None:
        """Load one changelog entry (the latest of its key; None deletes). Raises
        InsightStateError for a key or value this build cannot read."""
        kind, ikey, index = parse_key(key)
        st = self._keys.get(ikey)
        if value is None:
            if st is not None and kind == "m":
                del self._keys[ikey]
                self._open.discard(ikey)
            elif st is not None:
                st.baseline.drop(index)
            return
        if st is None:
            st = self._keys[ikey] = _Key(Baseline(self._cfg, _UNKNOWN_MS))
        if kind == "b":
            st.baseline.put(index, decode_bucket(value))
            return
        st.baseline.first_ms, st.opened = decode_meta(value)
        if any(st.opened):
            self._open.add(ikey)
        else:
            self._open.discard(ikey)

    def stats(self) -> dict[str, int]:
        """Counters for the status line and metrics (started/ended: since this process began)."""
        return {"keys": len(self._keys), "open_insights": sum(
                    o is not None for k in self._open for o in self._keys[k].opened),
                "insights_started": self._started, "insights_ended": self._ended,
                "keys_evicted": self._evicted}

    def _step(self, key: InsightKey, minute_ms: int, minute: MinuteStats
              ) -> list[dict[str, Any]]:
        st = self._touch(key, minute_ms)
        baseline = st.baseline
        for index in baseline.roll(minute_ms):
            self._deleted.add(bucket_key(key, index))
            self._dirty_buckets.discard((key, index))
        was_open = any(st.opened)
        learned = minute_ms - baseline.first_ms >= self._learn_ms
        events: list[dict[str, Any]] = []
        # A minute below both minimum counts cannot start an insight: skip the statistics.
        if was_open or (learned and (minute.calls >= self._cfg.min_calls
                                     or minute.errors >= self._cfg.min_errors)):
            events = self._detect(key, st, minute_ms, minute, learned)
        index = baseline.learn(minute_ms, minute, skip=was_open or any(st.opened))
        self._dirty_buckets.add((key, index))
        return events

    def _detect(self, key: InsightKey, st: _Key, minute_ms: int, minute: MinuteStats,
                learned: bool) -> list[dict[str, Any]]:
        snap = st.baseline.snapshot(minute_ms)
        cfg, events = self._cfg, []
        for i, kind in enumerate(KINDS):
            insight = st.opened[i]
            if insight is not None:
                if insight.observe(minute, cfg):
                    events.append(_event(key, insight, END, insight.end_ms))
                    st.opened[i] = None
                    self._ended += 1
            elif learned and snap.minutes and anomalous(kind, minute, snap, cfg):
                insight = OpenInsight.begin(kind, minute_ms, snap, st.baseline.counts())
                insight.observe(minute, cfg)
                st.opened[i] = insight
                events.append(_event(key, insight, START, minute_ms))
                self._started += 1
            else:
                continue
            self._dirty_meta.add(key)
        if any(st.opened):
            self._open.add(key)
        else:
            self._open.discard(key)
        return events

    def _touch(self, key: InsightKey, minute_ms: int) -> _Key:
        st = self._keys.get(key)
        if st is None:
            if len(self._keys) >= self._cfg.max_keys:
                self._evict()
            st = self._keys[key] = _Key(Baseline(self._cfg, minute_ms))
            self._dirty_meta.add(key)
            return st
        self._keys.move_to_end(key)
        if st.baseline.first_ms == _UNKNOWN_MS:  # restored without its meta entry
            st.baseline.first_ms = min((i * self._cfg.bucket_ms for i in st.baseline.indices()),
                                       default=minute_ms)
            self._dirty_meta.add(key)
        return st

    def _evict(self) -> None:
        """Forget the least recently active key without an open insight."""
        victim = next((k for k, st in self._keys.items() if not any(st.opened)), None)
        if victim is None:
            return
        st = self._keys.pop(victim)
        self._deleted.add(meta_key(victim))
        self._dirty_meta.discard(victim)
        for index in st.baseline.indices():
            self._deleted.add(bucket_key(victim, index))
            self._dirty_buckets.discard((victim, index))
        self._evicted += 1


def _event(key: InsightKey, insight: OpenInsight, state: str, at_ms: int) -> dict[str, Any]:
    return insight_event(key, insight.kind, state, at_ms, insight.start_ms,
                         insight.statistics(), insight.attributions())


def _order(event: dict[str, Any]) -> tuple[str, ...]:
    d = event["insightDetails"]
    return (event["recipientAccountId"], event["awsRegion"], d["eventSource"], d["eventName"],
            d["insightType"], d["state"])
