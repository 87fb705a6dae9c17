"""Threshold/dedup windows of single-event rules in the stateful stage."""

from __future__ import annotations

import random

from pipeline.rules.alert import alert_id
from pipeline.rules.model import Hit, RuleMeta
from pipeline.rules.state import Stage

MIN_MS = 60_000
PERIOD_MS = 60 * MIN_MS
T0_MS = 1_700_000_000_000 // PERIOD_MS * PERIOD_MS  # an aligned hour


def meta(threshold: int = 3) -> RuleMeta:
    return RuleMeta(id="burst", title="Burst", severity="medium", source="native:burst@1",
                    threshold=threshold, dedup_period_ms=PERIOD_MS)


def stage(threshold: int = 3, grace_ms: int = 5 * MIN_MS, max_keys: int = 1000) -> Stage:
    return Stage({"burst": meta(threshold)}, {}, grace_ms=grace_ms, max_keys=max_keys,
                 sample_size=2)


def hit(at_ms: int, event_id: str, key: str = "alice") -> Hit:
    return Hit(kind="rule", target="burst", key=key, rule_id="burst", event_time_ms=at_ms,
               event_id=event_id, account="111122223333", principal=key, title=f"Burst {key}",
               severity="high")


def test_threshold_opens_once_at_nth_hit_and_coalesces_updates() -> None:
    s = stage(threshold=3)
    assert s.observe(hit(T0_MS + 1_000, "e1")) == []
    assert s.observe(hit(T0_MS + 2_000, "e2")) == []
    assert s.flush_updates() == []
    [opening] = s.observe(hit(T0_MS + 3_000, "e3"))
    assert (opening.update, opening.count, opening.kind) == (0, 3, "rule")
    assert opening.alert_id == alert_id("burst", "alice", T0_MS)
    assert opening.window_start_ms == T0_MS
    assert (opening.first_seen_ms, opening.last_seen_ms) == (T0_MS + 1_000, T0_MS + 3_000)
    assert opening.sample_event_ids == ("e1", "e2")
    assert (opening.title, opening.severity, opening.principal) == ("Burst alice", "high", "alice")
    assert s.observe(hit(T0_MS + 4_000, "e4")) == []
    assert s.observe(hit(T0_MS + 500, "e5")) == []  # out of order, same window
    [update] = s.flush_updates()
    assert (update.alert_id, update.update, update.count) == (opening.alert_id, 1, 5)
    assert (update.first_seen_ms, update.last_seen_ms) == (T0_MS + 500, T0_MS + 4_000)
    assert s.flush_updates() == []
    s.observe(hit(T0_MS + 5_000, "e6"))
    [second] = s.flush_updates()
    assert (second.update, second.count) == (2, 6)


def test_next_aligned_window_opens_a_new_alert() -> None:
    s = stage(threshold=1)
    [first] = s.observe(hit(T0_MS + PERIOD_MS - 1, "e1"))
    [second] = s.observe(hit(T0_MS + PERIOD_MS, "e2"))
    assert second.update == 0
    assert second.window_start_ms == T0_MS + PERIOD_MS
    assert second.alert_id == alert_id("burst", "alice", T0_MS + PERIOD_MS) != first.alert_id


def test_keys_are_counted_apart() -> None:
    s = stage(threshold=2)
    assert s.observe(hit(T0_MS, "e1", key="alice")) == []
    assert s.observe(hit(T0_MS + 1, "e2", key="bob")) == []
    [opening] = s.observe(hit(T0_MS + 2, "e3", key="alice"))
    assert opening.key == "alice"


def test_alert_ids_do_not_depend_on_arrival_order() -> None:
    rng = random.Random(8)
    hits = [hit(T0_MS + rng.randrange(3 * PERIOD_MS), f"e{n}", key=rng.choice("ab"))
            for n in range(200)]

    def ids(order: list[Hit]) -> set[str]:
        s = stage(threshold=2, grace_ms=4 * PERIOD_MS)
        return {draft.alert_id for h in order for draft in s.observe(h)}

    expected = {alert_id("burst", key, start)
                for key in "ab" for start in range(T0_MS, T0_MS + 3 * PERIOD_MS, PERIOD_MS)
                if sum(h.key == key and start <= h.event_time_ms < start + PERIOD_MS
                       for h in hits) >= 2}
    shuffled = hits[:]
    rng.shuffle(shuffled)
    assert ids(hits) == ids(shuffled) == expected
    assert ids(sorted(hits, key=lambda h: h.event_time_ms)) == expected


def test_late_within_grace_counts_and_beyond_grace_does_not() -> None:
    s = stage(threshold=2, grace_ms=5 * MIN_MS)
    s.observe(hit(T0_MS + 30 * MIN_MS, "e1", key="bob"))  # watermark
    assert s.observe(hit(T0_MS + 20 * MIN_MS, "late", key="alice")) == []
    assert s.stats()["late_dropped"] == 1
    assert s.observe(hit(T0_MS + 26 * MIN_MS, "e2", key="alice")) == []
    [opening] = s.observe(hit(T0_MS + 27 * MIN_MS, "e3", key="alice"))
    assert opening.sample_event_ids == ("e2", "e3")
    assert s.stats()["late_dropped"] == 1


def test_a_window_expires_once_the_watermark_passes_its_end_and_grace() -> None:
    grace_ms = 5 * MIN_MS
    s = stage(threshold=1, grace_ms=grace_ms)
    s.observe(hit(T0_MS, "e1"))
    s.flush_updates()
    s.changes()
    s.observe(hit(T0_MS + PERIOD_MS + grace_ms, "e2", key="bob"))
    s.flush_updates()
    assert None not in s.changes().values()
    s.observe(hit(T0_MS + PERIOD_MS + grace_ms + 2 * MIN_MS, "e3", key="bob"))
    s.flush_updates()
    deleted = [key for key, value in s.changes().items() if value is None]
    assert deleted == [f"r\x1fburst\x1f{T0_MS}\x1falice"]
    assert s.stats()["expired"] == 1 and s.stats()["rule_windows"] == 1


def test_eviction_under_the_cap_drops_the_oldest_keys() -> None:
    s = stage(threshold=1, max_keys=4)
    for n in range(4):
        s.observe(hit(T0_MS + n * 1_000, f"e{n}", key=f"k{n}"))
    s.changes()
    s.observe(hit(T0_MS + 9_000, "e9", key="k9"))
    assert s.stats()["evicted"] == 1
    assert s.stats()["keys"] == 4
    assert s.changes()[f"r\x1fburst\x1f{T0_MS}\x1fk0"] is None
    # k0's window is gone: its next hit opens it anew.
    [reopened] = s.observe(hit(T0_MS + 9_500, "e10", key="k0"))
    assert reopened.count == 1 and s.stats()["evicted"] == 2


def test_an_evicted_window_with_news_reports_its_last_update() -> None:
    s = stage(threshold=1, max_keys=2)
    s.observe(hit(T0_MS, "e1", key="old"))
    s.observe(hit(T0_MS + 1, "e2", key="old"))
    s.observe(hit(T0_MS + 2, "e3", key="mid"))
    s.observe(hit(T0_MS + 3, "e4", key="new"))
    [update] = s.flush_updates()
    assert (update.key, update.update, update.count) == ("old", 1, 2)
