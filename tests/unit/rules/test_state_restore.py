"""The stage's changelog: exact round trips, and a stage restored after a crash goes on
exactly as an uninterrupted one (same drafts, in the same order)."""

from __future__ import annotations

import random
from collections.abc import Mapping

import orjson
import pytest

from pipeline.rules.model import AlertDraft, CorrelationKind, CorrelationSpec, Hit, RuleMeta
from pipeline.rules.state import Stage, StateDecodeError, codec
from pipeline.rules.state.correlate import Group
from pipeline.rules.state.windows import Window

MIN_MS = 60_000
T0_MS = 1_700_000_000_000
RULES = {"burst": RuleMeta(id="burst", title="Burst", severity="low", source="native:b@1",
                           threshold=3, dedup_period_ms=10 * MIN_MS)}


def correlation(cid: str, kind: CorrelationKind, condition: Mapping[str, int],
                rules: tuple[str, ...] = ("a", "b", "c")) -> CorrelationSpec:
    meta = RuleMeta(id=cid, title=cid, severity="high", source=f"sigma:{cid}.yml")
    return CorrelationSpec(meta=meta, kind=kind, rules=rules, group_by=("principal",),
                           fields={}, timespan_ms=5 * MIN_MS, condition=condition,
                           value_field="ip" if kind == "value_count" else None)


CORRELATIONS = {
    "count": correlation("count", "event_count", {"gte": 4}),
    "values": correlation("values", "value_count", {"gt": 2}),
    "temporal": correlation("temporal", "temporal", {}),
    "ordered": correlation("ordered", "temporal_ordered", {}),
    "range": correlation("range", "event_count", {"gte": 2, "lte": 3}),
    "quiet": correlation("quiet", "event_count", {"neq": 2}, rules=("a",)),
}


def hits(seed: int, count: int) -> list[Hit]:
    """Mixed traffic: event time creeps forward, some hits out of order within the 2-minute
    grace and some beyond it."""
    rng = random.Random(seed)
    out, clock_ms = [], T0_MS
    for n in range(count):
        clock_ms += rng.randrange(0, 8_000)
        at_ms = clock_ms - rng.choice((0, 0, 0, rng.randrange(150_000)))
        key, rule = f"user{rng.randrange(4)}", rng.choice("abc")
        target = rng.choice(["burst", *CORRELATIONS])
        if target == "quiet":
            rule = "a"
        kind = "rule" if target == "burst" else "correlation"
        out.append(Hit(kind=kind, target=target, key=key, rule_id=rule, event_time_ms=at_ms,
                       event_id=f"e{n}", account=f"acct{n % 3}", region="eu-west-1",
                       principal=key, source_ip=f"10.0.0.{n % 9}", value=f"ip{rng.randrange(4)}",
                       title=f"Burst {key}", severity="low", context={"n": str(n)}))
    return out


def batches(stream: list[Hit], seed: int) -> list[list[Hit]]:
    rng = random.Random(seed)
    out, at = [], 0
    while at < len(stream):
        size = rng.randrange(1, 40)
        out.append(stream[at:at + size])
        at += size
    return out


def new_stage(max_keys: int) -> Stage:
    return Stage(RULES, CORRELATIONS, grace_ms=2 * MIN_MS, max_keys=max_keys, sample_size=3,
                 max_group_hits=6)


def run(parts: list[list[Hit]], max_keys: int, crash_every: int | None) -> list[AlertDraft]:
    """Process the batches as the alerter does; every ``crash_every`` batches, replace the
    stage with a fresh one restored from the whole changelog so far."""
    stage, changelog, drafts = new_stage(max_keys), [], []
    for number, batch in enumerate(parts, 1):
        for hit in batch:
            drafts.extend(stage.observe(hit))
        drafts.extend(stage.flush_updates())
        changelog.extend(stage.changes().items())
        if crash_every and number % crash_every == 0:
            stage = new_stage(max_keys)
            for key, value in changelog:
                stage.restore(key, value)
    return drafts


@pytest.mark.parametrize("max_keys", [10_000, 20])
@pytest.mark.parametrize("crash_every", [1, 7])
def test_a_restored_stage_goes_on_exactly_as_an_uninterrupted_one(
        max_keys: int, crash_every: int) -> None:
    parts = batches(hits(seed=8, count=4_000), seed=9)
    uninterrupted = run(parts, max_keys, crash_every=None)
    kinds = {d.rule_id for d in uninterrupted}
    assert kinds == {"burst", *CORRELATIONS}, "the stream must exercise every kind"
    assert any(d.update > 0 for d in uninterrupted)
    assert run(parts, max_keys, crash_every) == uninterrupted


def test_the_cap_bites_in_the_small_run() -> None:
    stage = new_stage(20)
    for hit in hits(seed=8, count=4_000):
        stage.observe(hit)
    stats = stage.stats()
    assert stats["evicted"] > 0 and stats["late_dropped"] > 0 and stats["trimmed"] > 0


def test_window_and_group_round_trip_exactly() -> None:
    window = Window.__new__(Window)
    (window.count, window.first_ms, window.last_ms, window.update, window.pending,
     window.samples, window.account, window.region, window.principal, window.source_ip,
     window.title, window.severity, window.context) = (
        7, T0_MS, T0_MS + 5, 2, True, ["e1", "é2"], "1", "eu-west-1", "arn:x", "::1",
        "Title \u2603", "high", {"why": "because"})
    encoded = codec.encode_window(window)
    assert codec.encode_window(codec.decode_window(encoded)) == encoded
    group = Group()
    group.fired_until_ms = T0_MS
    group.who = ("1", "r", "p", "ip")
    group.hits = [(T0_MS, 1, "e1", None), (T0_MS, 2, "e2", "v"), (T0_MS + 1, 0, "e3", "")]
    spec_rules = ("a", "b", "c")
    encoded = codec.encode_group(group, spec_rules)
    back = codec.decode_group(encoded, {"a": 0, "b": 1, "c": 2})
    assert (back.hits, back.who, back.fired_until_ms) == (group.hits, group.who, T0_MS)
    # A reordered rules list maps hits by rule id.
    moved = codec.decode_group(encoded, {"c": 0, "b": 1, "a": 2})
    assert [(item[1], item[2]) for item in moved.hits] == [(0, "e2"), (1, "e1"), (2, "e3")]
    assert codec.parse_key(codec.state_key(("r", "x", "k\x1fk2", 5))) == ("r", "x", "k\x1fk2", 5)
    assert codec.parse_key(codec.state_key(("c", "x", "k\x1fk2", 0))) == ("c", "x", "k\x1fk2", 0)


def test_an_unknown_version_or_key_is_refused() -> None:
    stage = new_stage(100)
    with pytest.raises(StateDecodeError):
        stage.restore("w", orjson.dumps([codec.VERSION + 1, 0]))
    with pytest.raises(StateDecodeError):
        stage.restore("x\x1fwhat", b"[1]")
    with pytest.raises(StateDecodeError):
        stage.restore("c\x1fcount\x1fuser1", b"not json")


def test_state_of_a_removed_rule_is_dropped_and_deleted_from_the_changelog() -> None:
    before = new_stage(100)
    for hit in hits(seed=3, count=50):
        before.observe(hit)
    before.flush_updates()
    changelog = {key: value for key, value in before.changes().items() if value is not None}
    after = Stage({}, {"count": CORRELATIONS["count"]}, grace_ms=2 * MIN_MS, max_keys=100,
                  sample_size=3)
    for key, value in changelog.items():
        after.restore(key, value)
    deleted = {key for key, value in after.changes().items() if value is None}
    kept = {key for key in changelog if key.startswith("c\x1fcount\x1f")}
    assert kept and deleted == set(changelog) - kept - {codec.META_KEY}
    assert after.stats()["keys"] == len(kept)
