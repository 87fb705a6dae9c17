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
order. State is bounded: at most ``max_keys`` rule windows plus correlation groups, evicted
by age past that (``evicted`` counts them: the cap bit), and at most ``max_group_hits`` hits
per group (``trimmed``); state that can no longer change is deleted (see
:mod:`pipeline.rules.state.store`).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from pipeline.rules.model import AlertDraft, CorrelationSpec, Hit, RuleMeta
from pipeline.rules.state import codec
from pipeline.rules.state.correlate import (
    NEVER_MS,
    Group,
    close_deadline_ms,
    close_due,
    closes_at_end,
    correlation_draft,
    fire_on_hit,
    insert,
    prune,
    take_window,
)
from pipeline.rules.state.store import Store
from pipeline.rules.state.windows import Window, add_hit, window_draft, window_id


class Stage:
    """Threshold/dedup and correlation state of one internal-topic partition."""

    def __init__(self, rules: Mapping[str, RuleMeta], correlations: Mapping[str, CorrelationSpec],
                 *, grace_ms: int, max_keys: int, sample_size: int,
                 max_group_hits: int = 4_000) -> None:
        self._rules = rules
        self._correlations = correlations
        # A rule listed twice in a correlation ranks by its first place.
        self._ranks = {cid: {rule: at for at, rule in reversed(list(enumerate(spec.rules)))}
                       for cid, spec in correlations.items()}
        self._at_close = {cid for cid, spec in correlations.items() if closes_at_end(spec)}
        self._grace_ms = grace_ms
        self._sample_size = sample_size
        self._max_group_hits = max_group_hits
        self._store = Store(rules, correlations, self._at_close, grace_ms=grace_ms,
                            max_keys=max_keys)
        self._watermark_ms = NEVER_MS
        self._meta_dirty = False
        self._closing: list[tuple[int, str, str]] = []
        self._counts = dict.fromkeys(("late_dropped", "unknown_target", "ignored", "trimmed"), 0)

    def observe(self, hit: Hit) -> list[AlertDraft]:
        """Apply one hit: the alerts it opens (update 0) and the correlation alerts it fires,
        including close-decided windows its event time closes. An aggregated hit (``count``
        > 1) is late only when its newest match is."""
        time_ms = hit.event_time_ms if hit.last_time_ms is None else hit.last_time_ms
        if time_ms < self._watermark_ms - self._grace_ms:
            self._counts["late_dropped"] += hit.count
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
        seen, samples), numbered 1, 2, ... per alert; then expires what can no longer change
        (a pending window's last update is never lost to expiry or eviction)."""
        store = self._store
        drafts, store.finals = store.finals, []
        for wid in store.pending:
            window = store.windows[wid]
            window.pending = False
            window.update += 1
            drafts.append(window_draft(wid, window, window.update))
            store.dirty[codec.window_state(wid)] = None
        store.pending.clear()
        store.expire_due(self._watermark_ms)
        drafts.extend(store.finals)
        store.finals = []
        return drafts

    def changes(self) -> dict[str, bytes | None]:
        """State changed since the last call, by changelog key: the encoded state, or None
        where it was deleted. Clears the record of changes."""
        out = self._store.changes()
        if self._meta_dirty:
            out[codec.META_KEY] = codec.encode_meta(self._watermark_ms)
            self._meta_dirty = False
        return out

    def restore(self, key: str, value: bytes | None) -> None:
        """Load one changelog entry (entries in changelog order; a later one wins; None is a
        deletion). State of rules or correlations no longer loaded is dropped, and deleted
        from the changelog at the next :meth:`changes`. Raises StateDecodeError."""
        sid = codec.parse_key(key)
        if sid is None:
            if value is not None:
                self._watermark_ms = codec.decode_meta(value)
            return
        store = self._store
        store.remove(sid)
        kind, target, group_key, start_ms = sid
        if value is None:
            return
        if kind == "r" and target in self._rules:
            wid = (target, group_key, start_ms)
            window = codec.decode_window(value)
            store.put_window(wid, window)
            if window.pending:
                store.pending[wid] = None
        elif kind == "c" and target in self._correlations:
            group = codec.decode_group(value, self._ranks[target])
            store.put_group(target, group_key, group)
            if target in self._at_close:
                self._schedule_close(target, group_key, group)
            else:
                store.refile_group(sid, group, None)
        else:
            store.dirty[sid] = None

    def stats(self) -> dict[str, int]:
        """Gauges and counters for metrics; an increase of ``evicted`` means the cap bit."""
        store = self._store
        return {
            "keys": store.keys, "rule_windows": len(store.windows),
            "correlation_groups": store.keys - len(store.windows), "rules": len(self._rules),
            "correlations": len(self._correlations), "watermark_ms": self._watermark_ms,
            "evicted": store.evicted, "expired": store.expired, **self._counts}

    def _observe_rule(self, hit: Hit) -> list[AlertDraft]:
        meta = self._rules.get(hit.target)
        if meta is None:
            self._counts["unknown_target"] += 1
            return []
        store = self._store
        wid = window_id(hit, meta)
        window = store.windows.get(wid)
        if window is None:
            store.make_room(self._watermark_ms)
            window = Window(hit, meta)
            store.put_window(wid, window)
        store.dirty[codec.window_state(wid)] = None
        if add_hit(window, hit, meta, self._sample_size):
            return [window_draft(wid, window, 0)]
        if window.pending:
            store.pending[wid] = None
        return []

    def _observe_correlation(self, hit: Hit) -> list[AlertDraft]:
        cid, key = hit.target, hit.key
        spec = self._correlations.get(cid)
        rank = self._ranks[cid].get(hit.rule_id) if spec is not None else None
        if spec is None or rank is None:
            self._counts["unknown_target"] += 1
            return []
        store, sid = self._store, ("c", cid, key, 0)
        group = store.groups[cid].get(key)
        before_ms = None
        if group is None:
            store.make_room(self._watermark_ms)
            group = Group()
            store.put_group(cid, key, group)
        elif cid not in self._at_close:
            before_ms = store.group_expiry_ms(cid, group)
        store.dirty[sid] = None
        group.who = (hit.account, hit.region, hit.principal, hit.source_ip)
        item = (hit.event_time_ms, rank, hit.event_id,
                hit.value if spec.kind == "value_count" else None)
        if cid in self._at_close:
            if not insert(group, item):
                self._counts["ignored"] += 1
            elif self._trim(group) or group.hits[0] is item:
                self._schedule_close(cid, key, group)
            return []
        drafts = self._fire(cid, spec, key, group, item)
        store.refile_group(sid, group, before_ms)
        return drafts

    def _fire(self, cid: str, spec: CorrelationSpec, key: str, group: Group,
              item: tuple[int, int, str, str | None]) -> list[AlertDraft]:
        """Insert the hit into a monotone group; the alert if a window now satisfies it."""
        if not insert(group, item):
            self._counts["ignored"] += 1
            return []
        self._trim(group)
        prune(spec, group, self._watermark_ms, self._grace_ms)
        start_ms = fire_on_hit(spec, group, item[0])
        if start_ms is None:
            return []
        window = take_window(spec, group, start_ms)
        return [correlation_draft(cid, spec, key, start_ms, window, group.who,
                                  self._sample_size)]

    def _trim(self, group: Group) -> bool:
        """Keep a group to ``max_group_hits`` hits, the oldest going first (counted as
        ``trimmed``), so its changelog entry stays well under Kafka's message size limit.
        Only a flood of one group key gets there: a monotone count fires long before."""
        excess = len(group.hits) - self._max_group_hits
        if excess <= 0:
            return False
        del group.hits[:excess]
        self._counts["trimmed"] += excess
        return True

    def _schedule_close(self, cid: str, key: str, group: Group) -> None:
        deadline_ms = close_deadline_ms(self._correlations[cid], group, self._grace_ms)
        if deadline_ms is not None and cid in self._at_close:
            heapq.heappush(self._closing, (deadline_ms, cid, key))

    def _close_due(self) -> list[AlertDraft]:
        """Decide the close-decided windows the watermark has passed (stale heap entries,
        left by groups that moved or went, are skipped)."""
        drafts, store = [], self._store
        while self._closing and self._closing[0][0] < self._watermark_ms:
            deadline_ms, cid, key = heapq.heappop(self._closing)
            spec, group = self._correlations[cid], store.groups[cid].get(key)
            if group is None or close_deadline_ms(spec, group, self._grace_ms) != deadline_ms:
                continue
            for start_ms, window in close_due(spec, group, self._watermark_ms, self._grace_ms):
                drafts.append(correlation_draft(cid, spec, key, start_ms, window, group.who,
                                                self._sample_size))
            if group.hits:
                store.dirty[("c", cid, key, 0)] = None
                self._schedule_close(cid, key, group)
            else:
                store.discard(("c", cid, key, 0))
                store.expired += 1
        return drafts
