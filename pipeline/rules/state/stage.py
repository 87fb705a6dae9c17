"""The alerter's stateful stage: threshold/dedup windows and correlations, by event time.

One :class:`Stage` serves one partition of the internal hits topic (keyed by target + key, so
every hit of one (target, key) reaches the same Stage, in that partition's order). Per batch
the alerter calls :meth:`Stage.observe` for each hit, then :meth:`Stage.flush_updates`, then
:meth:`Stage.changes`, and writes the drafts and the changed state (to the compacted changelog)
in the transaction that commits the batch. After a crash, :meth:`Stage.restore` with the
changelog in order rebuilds a Stage that goes on exactly as the lost one would have.

Time is event time. The watermark is the largest event time seen; a hit older than
``watermark - grace_ms`` is late: it is counted (``late_dropped``) and applied to nothing.
Later hits within the grace are applied normally, also to windows they complete out of
order. State is bounded: at most ``max_keys`` rule windows plus correlation groups; past
that, expired state goes first, then the keys whose newest event time is oldest (down to 90%
of the cap, so eviction is amortized; ``evicted`` counts them: the cap bit). State that can no
longer change is expired (deleted from the changelog): a rule window once the watermark
passes its end + grace, a correlation hit once it is older than watermark - timespan - grace.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping

from pipeline.rules.model import AlertDraft, CorrelationSpec, Hit, RuleMeta
from pipeline.rules.state import codec
from pipeline.rules.state.codec import StateId
from pipeline.rules.state.correlate import (
    NEVER_MS,
    Group,
    close_deadline_ms,
    close_due,
    closes_at_end,
    correlation_draft,
    fire_on_hit,
    insert,
    is_spent,
    newest_ms,
    prune,
    take_window,
)
from pipeline.rules.state.windows import (
    Window,
    WindowId,
    add_hit,
    window_draft,
    window_end_ms,
    window_id,
)

SCAN_EVERY_MS = 60_000
"""Expiry scans run when the watermark enters a new bucket of this many ms of event time."""


class Stage:
    """Threshold/dedup and correlation state of one internal-topic partition."""

    def __init__(self, rules: Mapping[str, RuleMeta], correlations: Mapping[str, CorrelationSpec],
                 *, grace_ms: int, max_keys: int, sample_size: int) -> None:
        self._rules = rules
        self._correlations = correlations
        # A rule listed twice in a correlation ranks by its first place.
        self._ranks = {cid: {rule: at for at, rule in reversed(list(enumerate(spec.rules)))}
                       for cid, spec in correlations.items()}
        self._at_close = {cid for cid, spec in correlations.items() if closes_at_end(spec)}
        self._grace_ms = grace_ms
        self._max_keys = max_keys
        self._sample_size = sample_size
        self._watermark_ms = NEVER_MS
        self._scan_bucket = NEVER_MS
        self._windows: dict[WindowId, Window] = {}
        self._groups: dict[str, dict[str, Group]] = {cid: {} for cid in correlations}
        self._keys = 0
        self._closing: list[tuple[int, str, str]] = []
        self._pending: dict[WindowId, None] = {}
        self._finals: list[AlertDraft] = []
        self._dirty: dict[StateId, None] = {}
        self._meta_dirty = False
        self._counts = dict.fromkeys(
            ("late_dropped", "unknown_target", "ignored", "evicted", "expired"), 0)

    def observe(self, hit: Hit) -> list[AlertDraft]:
        """Apply one hit: the alerts it opens (update 0) and the correlation alerts it fires,
        including close-decided windows its event time closes."""
        time_ms = hit.event_time_ms
        if time_ms < self._watermark_ms - self._grace_ms:
            self._counts["late_dropped"] += 1
            return []
        advanced = time_ms > self._watermark_ms
        if advanced:
            self._watermark_ms = time_ms
            self._meta_dirty = True
        rule = hit.kind == "rule"
        drafts = self._observe_rule(hit) if rule else self._observe_correlation(hit)
        if advanced and self._closing:
            drafts.extend(self._close_due())
        return drafts

    def flush_updates(self) -> list[AlertDraft]:
        """One update per open alert that got hits since the last call (running count, last
        seen, samples), numbered 1, 2, ... per alert; then expires what can no longer change."""
        drafts, self._finals = self._finals, []
        for wid in self._pending:
            window = self._windows[wid]
            window.pending = False
            window.update += 1
            drafts.append(window_draft(wid, window, window.update))
            self._dirty[codec.window_state(wid)] = None
        self._pending.clear()
        bucket = self._watermark_ms // SCAN_EVERY_MS
        if bucket != self._scan_bucket:
            self._scan_bucket = bucket
            self._meta_dirty = True
            self._expire()
        return drafts

    def changes(self) -> dict[str, bytes | None]:
        """State changed since the last call, by changelog key: the encoded state, or None
        where it was deleted. Clears the record of changes."""
        out: dict[str, bytes | None] = {}
        if self._meta_dirty:
            out[codec.META_KEY] = codec.encode_meta(self._watermark_ms, self._scan_bucket)
            self._meta_dirty = False
        for sid in self._dirty:
            out[codec.state_key(sid)] = self._encode(sid)
        self._dirty = {}
        return out

    def restore(self, key: str, value: bytes | None) -> None:
        """Load one changelog entry (entries in changelog order; a later one wins; None is a
        deletion). State of rules or correlations no longer loaded is dropped, and deleted
        from the changelog at the next :meth:`changes`. Raises StateDecodeError."""
        sid = codec.parse_key(key)
        if sid is None:
            if value is not None:
                self._watermark_ms, self._scan_bucket = codec.decode_meta(value)
            return
        self._remove(sid)
        kind, target, group_key, start_ms = sid
        if value is None:
            return
        if kind == "r" and target in self._rules:
            wid = (target, group_key, start_ms)
            self._windows[wid] = window = codec.decode_window(value)
            if window.pending:
                self._pending[wid] = None
        elif kind == "c" and target in self._correlations:
            group = codec.decode_group(value, self._ranks[target])
            self._groups[target][group_key] = group
            self._schedule_close(target, group_key, group)
        else:
            self._dirty[sid] = None
            return
        self._keys += 1

    def stats(self) -> dict[str, int]:
        """Gauges and counters for metrics; an increase of ``evicted`` means the cap bit."""
        return {
            "keys": self._keys, "rule_windows": len(self._windows),
            "correlation_groups": self._keys - len(self._windows), "rules": len(self._rules),
            "correlations": len(self._correlations), "watermark_ms": self._watermark_ms,
            **self._counts}

    def _observe_rule(self, hit: Hit) -> list[AlertDraft]:
        meta = self._rules.get(hit.target)
        if meta is None:
            self._counts["unknown_target"] += 1
            return []
        wid = window_id(hit, meta)
        window = self._windows.get(wid)
        if window is None:
            self._make_room()
            window = self._windows[wid] = Window(hit, meta)
            self._keys += 1
        self._dirty[codec.window_state(wid)] = None
        if add_hit(window, hit, meta, self._sample_size):
            return [window_draft(wid, window, 0)]
        if window.pending:
            self._pending[wid] = None
        return []

    def _observe_correlation(self, hit: Hit) -> list[AlertDraft]:
        cid, key = hit.target, hit.key
        spec = self._correlations.get(cid)
        rank = self._ranks[cid].get(hit.rule_id) if spec is not None else None
        if spec is None or rank is None:
            self._counts["unknown_target"] += 1
            return []
        group = self._groups[cid].get(key)
        if group is None:
            self._make_room()
            group = self._groups[cid][key] = Group()
            self._keys += 1
        self._dirty[("c", cid, key, 0)] = None
        group.who = (hit.account, hit.region, hit.principal, hit.source_ip)
        item = (hit.event_time_ms, rank, hit.event_id,
                hit.value if spec.kind == "value_count" else None)
        if not insert(group, item):
            self._counts["ignored"] += 1
            return []
        if cid in self._at_close:
            if group.hits[0] is item:
                self._schedule_close(cid, key, group)
            return []
        prune(spec, group, self._watermark_ms, self._grace_ms)
        start_ms = fire_on_hit(spec, group, hit.event_time_ms)
        if start_ms is None:
            return []
        window = take_window(spec, group, start_ms)
        return [correlation_draft(cid, spec, key, start_ms, window, group.who,
                                  self._sample_size)]

    def _schedule_close(self, cid: str, key: str, group: Group) -> None:
        deadline_ms = close_deadline_ms(self._correlations[cid], group, self._grace_ms)
        if deadline_ms is not None and cid in self._at_close:
            heapq.heappush(self._closing, (deadline_ms, cid, key))

    def _close_due(self) -> list[AlertDraft]:
        """Decide the close-decided windows the watermark has passed (stale heap entries,
        left by groups that moved or went, are skipped)."""
        drafts = []
        while self._closing and self._closing[0][0] < self._watermark_ms:
            deadline_ms, cid, key = heapq.heappop(self._closing)
            spec, group = self._correlations[cid], self._groups[cid].get(key)
            if group is None or close_deadline_ms(spec, group, self._grace_ms) != deadline_ms:
                continue
            for start_ms, window in close_due(spec, group, self._watermark_ms, self._grace_ms):
                drafts.append(correlation_draft(cid, spec, key, start_ms, window, group.who,
                                                self._sample_size))
            if group.hits:
                self._dirty[("c", cid, key, 0)] = None
                self._schedule_close(cid, key, group)
            else:
                self._discard(("c", cid, key, 0))
                self._counts["expired"] += 1
        return drafts

    def _expire(self) -> None:
        """Delete rule windows the watermark has passed (end + grace) and spent correlation
        groups; drop correlation hits no open window can hold."""
        limit_ms = self._watermark_ms - self._grace_ms
        gone: list[StateId] = [
            codec.window_state(wid) for wid, window in self._windows.items()
            if window_end_ms(wid, self._rules[wid[0]]) < limit_ms]
        for cid, groups in self._groups.items():
            spec = self._correlations[cid]
            if cid in self._at_close:
                continue
            for key, group in groups.items():
                if prune(spec, group, self._watermark_ms, self._grace_ms):
                    self._dirty[("c", cid, key, 0)] = None
                if is_spent(group, self._watermark_ms, self._grace_ms):
                    gone.append(("c", cid, key, 0))
        for sid in gone:
            self._discard(sid)
        self._counts["expired"] += len(gone)

    def _make_room(self) -> None:
        """Before adding a key at the cap: expire, then, unless that left the keys below 90%
        of the cap, evict the keys whose newest event time is oldest down to it (a full scan
        at most once per 10% of the cap in new keys)."""
        if self._keys < self._max_keys:
            return
        self._expire()
        excess = self._keys + 1 - (self._max_keys - self._max_keys // 10)
        if excess <= 0:
            return
        victims = heapq.nsmallest(excess, self._ages())
        for _, sid in victims:
            self._discard(sid)
        self._counts["evicted"] += len(victims)

    def _ages(self) -> Iterator[tuple[int, StateId]]:
        for wid, window in self._windows.items():
            yield window.last_ms, codec.window_state(wid)
        for cid, groups in self._groups.items():
            for key, group in groups.items():
                yield newest_ms(group), ("c", cid, key, 0)

    def _discard(self, sid: StateId) -> None:
        """Delete one key (a pending window's last update goes out at the next flush)."""
        window = self._remove(sid)
        if window is not None and window.pending:
            window.pending = False
            window.update += 1
            self._finals.append(window_draft((sid[1], sid[2], sid[3]), window, window.update))
        self._dirty[sid] = None

    def _remove(self, sid: StateId) -> Window | None:
        """Forget one key if held; the window when it was a rule window."""
        kind, target, key, start_ms = sid
        if kind == "r":
            wid = (target, key, start_ms)
            self._pending.pop(wid, None)
            window = self._windows.pop(wid, None)
            self._keys -= window is not None
            return window
        self._keys -= self._groups.get(target, {}).pop(key, None) is not None
        return None

    def _encode(self, sid: StateId) -> bytes | None:
        kind, target, key, start_ms = sid
        if kind == "r":
            window = self._windows.get((target, key, start_ms))
            return None if window is None else codec.encode_window(window)
        group = self._groups.get(target, {}).get(key)
        if group is None:
            return None
        return codec.encode_group(group, self._correlations[target].rules)
