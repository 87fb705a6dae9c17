"""Sigma v2.1 correlations in the stateful stage: event time, windows, grace, group keys."""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.rules.alert import alert_id
from pipeline.rules.model import AlertDraft, CorrelationKind, CorrelationSpec, Hit, RuleMeta
from pipeline.rules.state import Stage

MIN_MS = 60_000
T0_MS = 1_700_000_000_000
SPAN_MS = 15 * MIN_MS
GRACE_MS = 2 * MIN_MS


def spec(kind: CorrelationKind, rules: tuple[str, ...], condition: Mapping[str, int],
         value_field: str | None = None) -> CorrelationSpec:
    meta = RuleMeta(id="corr", title="Correlated", severity="high", source="sigma:corr.yml")
    return CorrelationSpec(meta=meta, kind=kind, rules=rules, group_by=("principal",),
                           fields={}, timespan_ms=SPAN_MS, condition=condition,
                           value_field=value_field)


def stage(correlation: CorrelationSpec, max_keys: int = 1000) -> Stage:
    return Stage({}, {"corr": correlation}, grace_ms=GRACE_MS, max_keys=max_keys,
                 sample_size=10)


def hit(at_min: float, event_id: str, rule: str = "a", key: str = "alice",
        value: str | None = None) -> Hit:
    return Hit(kind="correlation", target="corr", key=key, rule_id=rule,
               event_time_ms=T0_MS + int(at_min * MIN_MS), event_id=event_id,
               account="111122223333", principal=key, source_ip="192.0.2.1", value=value)


def feed(s: Stage, hits: list[Hit]) -> list[AlertDraft]:
    return [draft for h in hits for draft in s.observe(h)]


def test_event_count_inside_the_timespan_fires_and_outside_does_not() -> None:
    counting = spec("event_count", ("a",), {"gte": 3})
    inside = feed(stage(counting), [hit(0, "e1"), hit(7, "e2"), hit(14.9, "e3")])
    assert [d.sample_event_ids for d in inside] == [("e1", "e2", "e3")]
    outside = feed(stage(counting), [hit(0, "e1"), hit(7, "e2"), hit(15, "e3")])
    assert outside == []


def test_event_count_gte_fires_once_per_window_then_again_after_its_end() -> None:
    s = stage(spec("event_count", ("a",), {"gte": 2}))
    [fired] = feed(s, [hit(0, "e1"), hit(1, "e2")])
    assert fired.alert_id == alert_id("corr", "alice", T0_MS // SPAN_MS * SPAN_MS)
    assert (fired.kind, fired.count, fired.window_start_ms) == ("correlation", 2, T0_MS)
    assert (fired.rule_ids, fired.title, fired.severity) == (("a",), "Correlated", "high")
    assert feed(s, [hit(2, "e3"), hit(10, "e4"), hit(14, "e5")]) == []
    [again] = feed(s, [hit(15, "e6"), hit(16, "e7")])
    assert again.window_start_ms == T0_MS + 15 * MIN_MS
    assert again.sample_event_ids == ("e6", "e7")
    assert again.alert_id != fired.alert_id  # at most one firing per aligned bucket


def test_a_correlation_alert_id_does_not_depend_on_arrival_order() -> None:
    """Hits of one group from several partitions: which arrive first moves the start of the
    window that fires, not the alert's id (the start's timespan-aligned bucket)."""
    s1 = stage(spec("temporal_ordered", ("a", "b"), {}))
    s2 = stage(spec("temporal_ordered", ("a", "b"), {}))
    # T0 + 2..5 min lies in one 15-min bucket (its boundary is at T0 + 100 s).
    in_order = feed(s1, [hit(2, "a1"), hit(4, "a2", rule="a"), hit(5, "b1", rule="b")])
    other = feed(s2, [hit(4, "a2", rule="a"), hit(5, "b1", rule="b"), hit(2, "a1")])
    assert [d.window_start_ms for d in in_order] != [d.window_start_ms for d in other]
    assert [d.alert_id for d in in_order] == [d.alert_id for d in other]


def test_another_group_key_does_not_count() -> None:
    s = stage(spec("event_count", ("a",), {"gte": 3}))
    assert feed(s, [hit(0, "e1", key="alice"), hit(1, "e2", key="bob"),
                    hit(2, "e3", key="alice")]) == []
    [fired] = feed(s, [hit(3, "e4", key="alice")])
    assert fired.key == "alice" and fired.sample_event_ids == ("e1", "e3", "e4")


def test_value_count_counts_distinct_values() -> None:
    s = stage(spec("value_count", ("a",), {"gte": 3}, value_field="sourceIPAddress"))
    same = [hit(n, f"e{n}", value="198.51.100.1") for n in range(5)]
    assert feed(s, [*same, hit(5, "e5", value="198.51.100.2")]) == []
    [fired] = feed(s, [hit(6, "e6", value="198.51.100.3")])
    assert fired.count == 7 and fired.window_start_ms == T0_MS


def test_temporal_fires_in_any_order_within_the_timespan() -> None:
    both = spec("temporal", ("a", "b"), {})
    assert len(feed(stage(both), [hit(0, "e1", rule="b"), hit(5, "e2", rule="a")])) == 1
    assert feed(stage(both), [hit(0, "e1", rule="b"), hit(15, "e2", rule="a")]) == []
    assert feed(stage(both), [hit(0, "e1", rule="a"), hit(5, "e2", rule="a")]) == []


def test_temporal_ordered_fires_in_order_and_not_in_reverse() -> None:
    ordered = spec("temporal_ordered", ("create", "attach", "key"), {})
    in_order = [hit(0, "e1", "create"), hit(3, "e2", "attach"), hit(9, "e3", "key")]
    [fired] = feed(stage(ordered), in_order)
    assert fired.rule_ids == ("create", "attach", "key")
    reverse = [hit(0, "e1", "key"), hit(3, "e2", "attach"), hit(9, "e3", "create")]
    assert feed(stage(ordered), reverse) == []
    too_slow = [hit(0, "e1", "create"), hit(3, "e2", "attach"), hit(15, "e3", "key")]
    assert feed(stage(ordered), too_slow) == []


def test_temporal_ordered_goes_by_event_time_not_arrival() -> None:
    ordered = spec("temporal_ordered", ("create", "attach", "key"), {})
    # Arrives last but happened first (late within grace): in order by event time.
    late_first = [hit(3, "e2", "attach"), hit(4, "e3", "key"), hit(2, "e1", "create")]
    [fired] = feed(stage(ordered), late_first)
    assert fired.window_start_ms == T0_MS + 2 * MIN_MS
    assert fired.sample_event_ids == ("e1", "e2", "e3")
    # Arrives in rule order but happened in reverse: no.
    reversed_times = [hit(4, "e1", "create"), hit(3, "e2", "attach"), hit(2.5, "e3", "key")]
    assert feed(stage(ordered), reversed_times) == []


def test_late_within_grace_counts_and_beyond_grace_does_not() -> None:
    counting = spec("event_count", ("a",), {"gte": 3})
    within = [hit(10, "e1"), hit(11, "e2"), hit(11 - 1.5, "late")]  # 1.5 min behind
    assert len(feed(stage(counting), within)) == 1
    s = stage(counting)
    beyond = [hit(10, "e1"), hit(11, "e2"), hit(11 - 2.5, "late")]  # 2.5 min behind
    assert feed(s, beyond) == []
    assert s.stats()["late_dropped"] == 1


def test_range_condition_is_decided_when_the_window_closes() -> None:
    ranged = spec("event_count", ("a",), {"gte": 3, "lte": 5})
    s = stage(ranged)
    assert feed(s, [hit(n, f"e{n}") for n in range(4)]) == []
    # The window [0, 15) closes once the watermark is past 15 + grace (2).
    assert feed(s, [hit(17, "other", key="bob")]) == []
    [fired] = feed(s, [hit(17.01, "other2", key="bob")])
    assert (fired.count, fired.window_start_ms) == (4, T0_MS)
    assert fired.sample_event_ids == ("e0", "e1", "e2", "e3")
    too_many = stage(ranged)
    feed(too_many, [hit(n, f"e{n}") for n in range(7)])
    assert feed(too_many, [hit(30, "other", key="bob")]) == []
    assert too_many.stats()["correlation_groups"] == 1  # alice's window closed and went


def test_range_window_accepts_late_hits_until_it_closes() -> None:
    s = stage(spec("event_count", ("a",), {"gte": 3, "lte": 5}))
    feed(s, [hit(0, "e0"), hit(1, "e1"), hit(16, "e16", key="bob")])
    assert feed(s, [hit(14.5, "late")]) == []  # within grace of 16: joins [0, 15)
    [fired] = feed(s, [hit(18, "tick", key="bob")])
    assert fired.count == 3 and fired.last_seen_ms == T0_MS + int(14.5 * MIN_MS)


def test_lt_condition_fires_for_a_quiet_window() -> None:
    s = stage(spec("event_count", ("a",), {"lt": 2}))
    feed(s, [hit(0, "e0")])
    [fired] = feed(s, [hit(20, "tick", key="bob")])
    assert fired.key == "alice" and fired.count == 1


def test_eviction_under_the_cap_drops_the_group_with_the_oldest_hit() -> None:
    s = stage(spec("event_count", ("a",), {"gte": 2}), max_keys=2)
    feed(s, [hit(0, "e1", key="old"), hit(1, "e2", key="mid"), hit(2, "e3", key="new")])
    assert s.stats()["evicted"] == 1 and s.stats()["keys"] == 2
    assert s.changes()["c\x1fcorr\x1fold"] is None
    # "old" lost its first hit, so one more hit does not reach 2.
    assert feed(s, [hit(3, "e4", key="old")]) == []
    assert len(feed(s, [hit(4, "e5", key="new")])) == 1


def test_a_repeated_event_counts_once() -> None:
    s = stage(spec("event_count", ("a",), {"gte": 2}))
    assert feed(s, [hit(0, "e1"), hit(0, "e1")]) == []
    assert s.stats()["ignored"] == 1


def test_a_flooded_group_keeps_its_newest_hits() -> None:
    distinct = spec("value_count", ("a",), {"gte": 3}, value_field="sourceIPAddress")
    s = Stage({}, {"corr": distinct}, grace_ms=GRACE_MS, max_keys=10, sample_size=10,
              max_group_hits=5)
    feed(s, [hit(n / 10, f"x{n}", value="x") for n in range(10)])
    assert s.stats()["trimmed"] == 5
    [fired] = feed(s, [hit(1, "y", value="y"), hit(1.1, "z", value="z")])
    assert fired.count == 5 and fired.sample_event_ids == ("x7", "x8", "x9", "y", "z")


def test_a_trimmed_close_decided_group_closes_by_its_oldest_kept_hit() -> None:
    ranged = spec("event_count", ("a",), {"gte": 2, "lte": 3})
    s = Stage({}, {"corr": ranged}, grace_ms=GRACE_MS, max_keys=10, sample_size=10,
              max_group_hits=3)
    feed(s, [hit(n, f"e{n}") for n in range(5)])  # e0 and e1 trimmed; the window is [2, 17)
    assert feed(s, [hit(18.5, "tick", key="bob")]) == []
    [fired] = feed(s, [hit(19.01, "tick2", key="bob")])
    assert fired.sample_event_ids == ("e2", "e3", "e4")
