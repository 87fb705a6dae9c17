"""The reader's merge (pipeline.aggregates.merge) against a brute-force recount of the events
the Aggregate rows were built from: base records, corrections, copies and capped lists."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest

from pipeline.aggregates.merge import check, rollup
from pipeline.aggregates.table import object_key, to_table

MINUTE_MS = 60_000
T0 = 1_700_000_040_000  # a minute boundary
DIMS = ("account", "region", "event_source", "event_name", "outcome", "identity_type")


@dataclass(frozen=True)
class Ev:
    """One event as the aggregator sees it (principal/source_ip None: the call had none)."""

    time_ms: int
    account: str
    region: str
    event_source: str
    event_name: str
    outcome: str
    identity_type: str
    principal: str | None
    source_ip: str | None
    late: bool  # beyond grace: lands in a correction record


def _events(seed: int, n: int) -> list[Ev]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        name = rng.choice(["GetObject", "PutObject", "AssumeRole"])
        out.append(Ev(
            time_ms=T0 + rng.randrange(3 * MINUTE_MS),
            account=rng.choice(["111111111111", "222222222222", "333333333333"]),
            region=rng.choice(["us-east-1", "eu-west-1"]),
            event_source="sts.amazonaws.com" if name == "AssumeRole" else "s3.amazonaws.com",
            event_name=name,
            outcome=rng.choice(["OK", "OK", "OK", "AccessDenied", "Throttling"]),
            identity_type=rng.choice(["IAMUser", "AssumedRole"]),
            principal=rng.choice([None, "arn:aws:iam::1:user/a", "arn:aws:iam::1:user/b",
                                  "arn:aws:iam::2:role/c", "arn:aws:iam::3:user/d"]),
            source_ip=rng.choice([None, "10.0.0.1", "10.0.0.2", "192.0.2.7"]),
            late=rng.random() < 0.15))
    return out


def _window(ev: Ev) -> int:
    return ev.time_ms - ev.time_ms % MINUTE_MS


def _dims(ev: Ev) -> tuple[str, ...]:
    return tuple(getattr(ev, d) for d in DIMS)


def _record(events: list[Ev], *, correction: bool, trigger_offset: int, complete: bool,
            emitted_ms: int = 1) -> dict[str, Any]:
    """The Aggregate datum the aggregator writes for ``events`` (one window, one key)."""
    first = events[0]
    principals = Counter(e.principal for e in events if e.principal is not None)
    ips = Counter(e.source_ip for e in events if e.source_ip is not None)

    def listed(counts: Counter[str]) -> list[dict[str, Any]]:
        return [{"value": v, "count": c} for v, c in counts.most_common()] if complete else []

    start = _window(first)
    return {"window_size": "1m", "window_start_ms": start, "window_end_ms": start + MINUTE_MS,
            **dict(zip(DIMS, _dims(first), strict=True)), "count": len(events),
            "distinct_principals": len(principals), "distinct_source_ips": len(ips),
            "principals": listed(principals), "source_ips": listed(ips),
            "values_complete": complete, "correction": correction, "partition": 0,
            "trigger_offset": trigger_offset, "watermark_ms": 0, "emitted_ms": emitted_ms}


def _rows(events: list[Ev], *, rng: random.Random, incomplete: float = 0.0,
          copies: float = 0.0) -> list[dict[str, Any]]:
    """Base records of the on-time events per (window, key), one or two corrections for the
    late ones, a share of records with capped lists and a share copied (as a replay leaves
    them in the lake: same key, later emitted_ms)."""
    groups: dict[tuple[Any, ...], list[Ev]] = defaultdict(list)
    for ev in events:
        groups[(_window(ev), _dims(ev), ev.late)].append(ev)
    rows, offset = [], 0
    for (_, _, late), evs in groups.items():
        batches = [evs[: len(evs) // 2], evs[len(evs) // 2:]] if late else [evs]
        for batch in (b for b in batches if b):
            offset += 1
            rows.append(_record(batch, correction=late, trigger_offset=offset,
                                complete=rng.random() >= incomplete))
    rows += [{**r, "emitted_ms": 2} for r in rows if rng.random() < copies]
    rng.shuffle(rows)
    return rows


ROLLUPS: dict[str, Callable[[Ev], tuple[str, ...]]] = {
    "account": lambda e: (e.account,), "region": lambda e: (e.region,),
    "eventName": lambda e: (e.event_name,), "eventSource": lambda e: (e.event_source,),
    "errorCode": lambda e: (e.outcome,), "identityType": lambda e: (e.identity_type,),
    "key": _dims,
}
OUT = {"account": ["account"], "region": ["region"], "eventName": ["event_name"],
       "eventSource": ["event_source"], "errorCode": ["error_code"],
       "identityType": ["identity_type"], "key": list(DIMS)}


def _recount(events: Iterable[Ev], group: Callable[[Ev], tuple[str, ...]]
             ) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    """(window, group...) -> (count, distinct principals, distinct source IPs)."""
    evs: dict[tuple[Any, ...], list[Ev]] = defaultdict(list)
    for ev in events:
        evs[(_window(ev), *group(ev))].append(ev)
    return {k: (len(v), len({e.principal for e in v} - {None}),
                len({e.source_ip for e in v} - {None})) for k, v in evs.items()}


def _got(table: Any, names: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {(r["window_start_ms"], *(r[n] for n in names)): r for r in table.to_pylist()}


@pytest.mark.parametrize("by", list(ROLLUPS))
@pytest.mark.parametrize("seed", [1, 2])
def test_simple_rollups_equal_the_recount(by: str, seed: int) -> None:
    events = _events(seed, 600)
    table = to_table(_rows(events, rng=random.Random(seed), copies=0.3))
    kept = [e for e in events if by != "errorCode" or e.outcome != "OK"]
    expected = _recount(kept, ROLLUPS[by])
    got = _got(rollup(table, window_size="1m", by=[by]), OUT[by])
    assert set(got) == set(expected)
    for key, (count, principals, ips) in expected.items():
        row = got[key]
        assert (row["count"], row["distinct_principals"], row["distinct_source_ips"]) == \
            (count, principals, ips)
        assert row["distinct_exact"] is True


def test_corrections_are_counted_and_reported() -> None:
    events = _events(3, 400)
    table = to_table(_rows(events, rng=random.Random(3)))
    late = Counter(_window(e) for e in events if e.late)
    got = _got(rollup(table, window_size="1m", by=["key"]), list(DIMS))
    assert sum(r["corrections"] for r in got.values()) == \
        sum(1 for r in table.to_pylist() if r["correction"])
    assert {w: sum(r["count"] for k, r in got.items() if k[0] == w) for w in late} == \
        {w: sum(1 for e in events if _window(e) == w) for w in late}


@pytest.mark.parametrize("by,attr", [("principal", "principal"), ("sourceIP", "source_ip")])
def test_list_rollups_equal_the_recount(by: str, attr: str) -> None:
    events = _events(4, 600)
    table = to_table(_rows(events, rng=random.Random(4), copies=0.3))
    expected = Counter((_window(e), e.account, getattr(e, attr)) for e in events
                       if getattr(e, attr) is not None)
    result = rollup(table, window_size="1m", by=["account", by])
    got = {(r["window_start_ms"], r["account"], r[attr]): r for r in result.to_pylist()}
    assert {k: r["count"] for k, r in got.items()} == dict(expected)
    assert all(r["exact"] for r in got.values())


def test_capped_lists_keep_counts_exact_and_flag_the_rest() -> None:
    events = _events(5, 600)
    table = to_table(_rows(events, rng=random.Random(5), incomplete=0.3))
    truth = _recount(events, ROLLUPS["eventName"])
    for row in rollup(table, window_size="1m", by=["eventName"]).to_pylist():
        count, principals, ips = truth[(row["window_start_ms"], row["event_name"])]
        assert row["count"] == count
        if row["distinct_exact"]:
            assert (row["distinct_principals"], row["distinct_source_ips"]) == (principals, ips)
        else:  # the sum of the parts' distinct counts: an upper bound
            assert row["distinct_principals"] >= principals
            assert row["distinct_source_ips"] >= ips
    flags = [r["distinct_exact"] for r in rollup(table, window_size="1m",
                                                 by=["eventName"]).to_pylist()]
    assert False in flags
    listed = rollup(table, window_size="1m", by=["principal"]).to_pylist()
    assert False in [r["exact"] for r in listed]


def _row(**fields: Any) -> dict[str, Any]:
    base = {"window_size": "1m", "window_start_ms": T0, "window_end_ms": T0 + MINUTE_MS,
            "account": "111111111111", "region": "us-east-1", "event_source": "s3.amazonaws.com",
            "event_name": "GetObject", "outcome": "OK", "identity_type": "IAMUser", "count": 1,
            "distinct_principals": 1, "distinct_source_ips": 0,
            "principals": [{"value": "arn:p", "count": 1}], "partition": 0,
            "trigger_offset": 1, "watermark_ms": 0, "emitted_ms": 1}
    return {**base, **fields}


def test_a_single_capped_part_keeps_its_own_distinct_counts() -> None:
    table = to_table([_row(count=9, distinct_principals=4, principals=[],
                           values_complete=False)])
    [row] = rollup(table, window_size="1m", by=["key"]).to_pylist()
    assert (row["count"], row["distinct_principals"], row["distinct_exact"]) == (9, 4, True)


def test_base_copies_with_other_trigger_offsets_count_once() -> None:
    # The Kafka key of a base record has no offset: the latest copy per key is the truth.
    table = to_table([_row(count=5, trigger_offset=7, emitted_ms=1),
                      _row(count=5, trigger_offset=8, emitted_ms=2),
                      _row(count=2, correction=True, trigger_offset=20),
                      _row(count=2, correction=True, trigger_offset=20, emitted_ms=3),
                      _row(count=1, correction=True, trigger_offset=21)])
    [row] = rollup(table, window_size="1m", by=["account"]).to_pylist()
    assert (row["count"], row["corrections"]) == (8, 2)


def test_top_n_per_window_by_count_then_value() -> None:
    rows = [_row(account=a, count=c, trigger_offset=i)
            for i, (a, c) in enumerate([("a", 5), ("b", 7), ("c", 5), ("d", 1)])]
    rows.append(_row(account="z", count=3, window_start_ms=T0 + MINUTE_MS,
                     window_end_ms=T0 + 2 * MINUTE_MS))
    got = rollup(to_table(rows), window_size="1m", by=["account"], top=2).to_pylist()
    assert [(r["window_start_ms"], r["account"], r["count"]) for r in got] == [
        (T0, "b", 7), (T0, "a", 5), (T0 + MINUTE_MS, "z", 3)]


def test_windows_are_selected_by_overlap_and_size() -> None:
    rows = [_row(window_start_ms=T0 + i * MINUTE_MS, window_end_ms=T0 + (i + 1) * MINUTE_MS,
                 count=i + 1) for i in range(4)]
    rows.append(_row(window_size="1h", window_start_ms=T0, window_end_ms=T0 + 3_600_000))
    got = rollup(to_table(rows), window_size="1m", by=["account"],
                 start_ms=T0 + MINUTE_MS + 30_000, end_ms=T0 + 3 * MINUTE_MS)
    assert got.column("count").to_pylist() == [2, 3]
    hourly = rollup(to_table(rows), window_size="1h", by=["account"])
    assert hourly.column("count").to_pylist() == [1]


@pytest.mark.parametrize("kwargs", [
    {"window_size": "5m", "by": ["account"], "top": None},
    {"window_size": "1m", "by": ["nope"], "top": None},
    {"window_size": "1m", "by": [], "top": None},
    {"window_size": "1m", "by": ["principal", "sourceIP"], "top": None},
    {"window_size": "1m", "by": ["key", "account"], "top": None},
    {"window_size": "1m", "by": ["account"], "top": 0},
])
def test_bad_arguments_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        check(**kwargs)


def test_object_key_and_table() -> None:
    assert object_key("1h", T0, 3, 42) == \
        "aggregates/window_size=1h/date=2023-11-14/p3-00000000000000000042.parquet"
    with pytest.raises(ValueError):
        object_key("5m", T0, 0, 0)
    with pytest.raises(ValueError, match="count"):
        to_table([{k: v for k, v in _row().items() if k != "count"}])
    table = to_table([_row()])
    assert table.column("source_ips").to_pylist() == [[]]  # the Avro default
    assert table.schema.field("principals").type == \
        pa.list_(pa.struct([("value", pa.string()), ("count", pa.int64())]))
