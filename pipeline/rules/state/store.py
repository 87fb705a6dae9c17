"""The keyed state of a stage: rule windows and correlation groups, what changed since the
last changelog write, expiry and eviction under the cap.

Expiry deletes state that can no longer change: a rule window once the watermark passes its
end + grace; a monotone correlation group once its newest hit is older than watermark -
timespan - grace and its fired window's end is older than watermark - grace (close-decided
groups go when their last window closes). Eviction: before a key is added at the cap, all
expired state goes, then, unless that left the keys below 90% of the cap, the keys whose
newest event time is oldest down to it (one full pass per 10% of the cap in new keys).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping

from pipeline.rules.model import AlertDraft, CorrelationSpec, RuleMeta
from pipeline.rules.state import codec
from pipeline.rules.state.codec import StateId
from pipeline.rules.state.correlate import Group, expiry_ms, newest_ms
from pipeline.rules.state.expiry import ExpiryWheel, bucket_of
from pipeline.rules.state.windows import Window, WindowId, window_draft, window_end_ms


class Store:
    """Windows and groups by key; every change is recorded in ``dirty`` by the caller or
    here. ``finals`` holds the last updates of pending windows that were deleted."""

    def __init__(self, rules: Mapping[str, RuleMeta], correlations: Mapping[str, CorrelationSpec],
                 at_close: set[str], *, grace_ms: int, max_keys: int) -> None:
        self.rules = rules
        self.correlations = correlations
        self.at_close = at_close
        self.grace_ms = grace_ms
        self.max_keys = max_keys
        self.windows: dict[WindowId, Window] = {}
        self.groups: dict[str, dict[str, Group]] = {cid: {} for cid in correlations}
        self.keys = 0
        self.pending: dict[WindowId, None] = {}
        self.finals: list[AlertDraft] = []
        self.dirty: dict[StateId, None] = {}
        self.wheel = ExpiryWheel()
        self.evicted = 0
        self.expired = 0

    def put_window(self, wid: WindowId, window: Window) -> None:
        self.windows[wid] = window
        self.keys += 1
        self.wheel.file(codec.window_state(wid), self._window_expiry_ms(wid))

    def put_group(self, cid: str, key: str, group: Group) -> None:
        """Hold a group; the caller files a monotone one with :meth:`refile_group`."""
        self.groups[cid][key] = group
        self.keys += 1

    def refile_group(self, sid: StateId, group: Group, before_ms: int | None) -> None:
        """After a monotone group was added or changed: file it if its expiry is new or
        moved to another bucket (``before_ms``: its expiry before, None when new)."""
        after_ms = self.group_expiry_ms(sid[1], group)
        if before_ms is None or bucket_of(before_ms) != bucket_of(after_ms):
            self.wheel.file(sid, after_ms)

    def expire_due(self, watermark_ms: int) -> None:
        """Delete the state whose current expiry is in a bucket the watermark has passed."""
        for sid, bucket in self.wheel.due(watermark_ms):
            expiry_at_ms = self._expiry_ms(sid)
            if expiry_at_ms is not None and bucket_of(expiry_at_ms) == bucket:
                self.discard(sid)
                self.expired += 1

    def make_room(self, watermark_ms: int) -> None:
        """Called before a key is added."""
        if self.keys < self.max_keys:
            return
        gone = [sid for _, sid in self._ages() if self._expired(sid, watermark_ms)]
        for sid in gone:
            self.discard(sid)
        self.expired += len(gone)
        excess = self.keys + 1 - (self.max_keys - self.max_keys // 10)
        if excess > 0:
            victims = heapq.nsmallest(excess, self._ages())
            for _, sid in victims:
                self.discard(sid)
            self.evicted += len(victims)

    def discard(self, sid: StateId) -> None:
        """Delete one key (a pending window's last update goes to ``finals``)."""
        window = self.remove(sid)
        if window is not None and window.pending:
            window.pending = False
            window.update += 1
            self.finals.append(window_draft((sid[1], sid[2], sid[3]), window, window.update))
        self.dirty[sid] = None

    def remove(self, sid: StateId) -> Window | None:
        """Forget one key if held, with no record of it; the window when it was one."""
        kind, target, key, start_ms = sid
        if kind == "r":
            wid = (target, key, start_ms)
            self.pending.pop(wid, None)
            window = self.windows.pop(wid, None)
            self.keys -= window is not None
            return window
        self.keys -= self.groups.get(target, {}).pop(key, None) is not None
        return None

    def changes(self) -> dict[str, bytes | None]:
        out = {codec.state_key(sid): self._encode(sid) for sid in self.dirty}
        self.dirty = {}
        return out

    def _expired(self, sid: StateId, watermark_ms: int) -> bool:
        expiry_at_ms = self._expiry_ms(sid)
        return expiry_at_ms is not None and expiry_at_ms < watermark_ms

    def _expiry_ms(self, sid: StateId) -> int | None:
        """When the key can be deleted; None when not held or deleted by closing."""
        kind, target, key, start_ms = sid
        if kind == "r":
            wid = (target, key, start_ms)
            return self._window_expiry_ms(wid) if wid in self.windows else None
        group = self.groups[target].get(key)
        if group is None or target in self.at_close:
            return None
        return self.group_expiry_ms(target, group)

    def _window_expiry_ms(self, wid: WindowId) -> int:
        return window_end_ms(wid, self.rules[wid[0]]) + self.grace_ms

    def group_expiry_ms(self, cid: str, group: Group) -> int:
        return expiry_ms(self.correlations[cid], group, self.grace_ms)

    def _ages(self) -> Iterator[tuple[int, StateId]]:
        for wid, window in self.windows.items():
            yield window.last_ms, codec.window_state(wid)
        for cid, groups in self.groups.items():
            for key, group in groups.items():
                yield newest_ms(group), ("c", cid, key, 0)

    def _encode(self, sid: StateId) -> bytes | None:
        kind, target, key, start_ms = sid
        if kind == "r":
            window = self.windows.get((target, key, start_ms))
            return None if window is None else codec.encode_window(window)
        group = self.groups.get(target, {}).get(key)
        if group is None:
            return None
        return codec.encode_group(group, self.correlations[target].rules)
