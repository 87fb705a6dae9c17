"""Helpers for the aggregator's unit tests: aggregation-column tables built by hand, decoded
event batches from hand-written CloudTrail records, a fake Insights engine, seeded out-of-order
streams, and a per-record reference model of the window semantics (re-stated from
``pipeline.aggregates.windows``, not imported) that batch results must equal.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from pipeline.aggregates.partition import PartitionState
from pipeline.batches import COORDINATE_SCHEMA, with_coordinates
from pipeline.config import Config
from pipeline.daemon import events_decoder
from pipeline.events.mapping import IngestMeta, parse_event_time, to_avro
from pipeline.events.wire import encode
from producers.generator.engine import Generator

NOW_MS = 1_800_000_000_000
"""The fixed processing clock."""
ACCOUNT = "111111111111"
REGION = "us-east-1"
ALICE = "arn:aws:iam::111111111111:user/alice"
BOB = "arn:aws:iam::111111111111:user/bob"
T0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000  # an hour boundary
SIZES_MS = {"1m": 60_000, "1h": 3_600_000}
DIMS = ("account", "region", "event_source", "event_name", "outcome", "identity_type")

COLUMNS = pa.schema([
    ("partition", pa.int32()), ("offset", pa.int64()), ("time_ms", pa.int64()),
    ("account", pa.string()), ("region", pa.string()), ("event_source", pa.string()),
    ("event_name", pa.string()), ("outcome", pa.string()), ("identity_type", pa.string()),
    ("principal", pa.string()), ("source_ip", pa.string()), ("user_agent", pa.string()),
    ("write_management", pa.bool_()),
])
"""The schema :func:`pipeline.aggregates.columns.aggregation_columns` returns."""


def row(offset: int, time_ms: int, **fields: Any) -> dict[str, Any]:
    """One aggregation-column row; unspecified fields get a plain IAM write call by alice."""
    base = {"partition": 0, "offset": offset, "time_ms": time_ms, "account": ACCOUNT,
            "region": REGION, "event_source": "iam.amazonaws.com", "event_name": "CreateUser",
            "outcome": "OK", "identity_type": "IAMUser", "principal": ALICE,
            "source_ip": "192.0.2.1", "user_agent": "aws-cli", "write_management": True}
    unknown = set(fields) - set(base)
    assert not unknown, unknown
    return {**base, **fields}


def table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=COLUMNS)


def state(*, grace_ms: int = 0, max_values: int = 100, partition: int = 0,
          insights: Any = None) -> PartitionState:
    return PartitionState(partition, grace_ms=grace_ms, max_values=max_values,
                          insights=insights, stats_of=dict, clock=lambda: NOW_MS)


def restored(log: Iterable[tuple[str, bytes | None]], **kwargs: Any) -> PartitionState:
    """A fresh state with ``log`` applied in order (see :func:`state` for ``kwargs``)."""
    fresh = state(**kwargs)
    for key, value in log:
        fresh.restore(key, value)
    fresh.restored()
    return fresh


def compacted(log: Sequence[tuple[str, bytes | None]]) -> list[tuple[str, bytes | None]]:
    """What a compacted topic keeps of ``log`` once tombstones expired: the latest value of
    every key, in the order of those latest records, deleted keys gone."""
    last = {key: i for i, (key, _) in enumerate(log)}
    return [log[i] for i in sorted(last.values()) if log[i][1] is not None]


class FakeInsights:
    """Records every closed minute handed over; its state (the minutes seen) round-trips
    through its changelog entry."""

    KEY = "fake|minutes"

    def __init__(self, emit: dict[int, dict[str, Any]] | None = None) -> None:
        self.minutes: list[tuple[int, dict[Any, Any]]] = []
        self.restores: list[str] = []
        self._emit = emit or {}
        self._dirty = False

    def close_minute(self, minute_start_ms: int, stats: Any) -> list[dict[str, Any]]:
        if self.minutes:
            assert minute_start_ms > self.minutes[-1][0], "minutes must ascend"
        self.minutes.append((minute_start_ms, stats))
        self._dirty = True
        event = self._emit.get(minute_start_ms)
        return [event] if event is not None else []

    def changes(self) -> dict[str, bytes | None]:
        if not self._dirty:
            return {}
        self._dirty = False
        return {self.KEY: orjson.dumps([m for m, _ in self.minutes])}

    def restore(self, key: str, value: bytes) -> None:
        self.restores.append(key)
        self.minutes = [(m, {}) for m in orjson.loads(value)]


# --- decoded events, as the Runner hands them to the processor -----------------------------

def ct_record(time_ms: int, *, account: str = ACCOUNT, region: str = REGION,
              event_name: str = "CreateUser", error: str | None = None, arn: str = ALICE,
              ip: str = "192.0.2.1", read_only: bool = False) -> dict[str, Any]:
    """A small CloudTrail management event record."""
    stamp = datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    record: dict[str, Any] = {
        "eventVersion": "1.08", "eventTime": stamp, "eventSource": "iam.amazonaws.com",
        "eventName": event_name, "awsRegion": region, "sourceIPAddress": ip,
        "userAgent": "aws-cli", "userIdentity": {"type": "IAMUser", "arn": arn,
                                                 "accountId": account},
        "eventID": f"id-{time_ms}-{event_name}", "readOnly": read_only,
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account,
        "eventCategory": "Management"}
    if error is not None:
        record["errorCode"] = error
    return record


def decoded(records: Sequence[dict[str, Any]], partition: int, first_offset: int
            ) -> pa.Table:
    """``records`` encoded and decoded natively, with Kafka coordinates (consecutive offsets
    in ``partition``)."""
    values = [encode(to_avro(r, ingest=IngestMeta(0, "test", "test"))) for r in records]
    batch = events_decoder(Config())(values)
    assert not batch.errors
    n = len(records)
    coords = pa.Table.from_arrays([
        pa.array(["events"] * n), pa.array([partition] * n, pa.int32()),
        pa.array(range(first_offset, first_offset + n), pa.int64()),
        pa.array([NOW_MS] * n, pa.int64()), pa.array([None] * n, pa.binary()),
        pa.array([1] * n, pa.int32())], schema=COORDINATE_SCHEMA)
    return with_coordinates(batch.table, coords)


def concat(*tables: pa.Table) -> pa.Table:
    return pa.concat_tables(tables)


# --- the reference model --------------------------------------------------------------------

@dataclass(slots=True)
class Tally:
    count: int = 0
    principals: Counter[str] = field(default_factory=Counter)
    source_ips: Counter[str] = field(default_factory=Counter)

    def add(self, r: dict[str, Any]) -> None:
        self.count += 1
        if r["principal"] is not None:
            self.principals[r["principal"]] += 1
        if r["source_ip"] is not None:
            self.source_ips[r["source_ip"]] += 1


WindowKey = tuple[str, int, tuple[str, ...]]


@dataclass(slots=True)
class Reference:
    """Bases (tally, trigger offset) and summed corrections per window key."""

    bases: dict[WindowKey, tuple[Tally, int]] = field(default_factory=dict)
    corrections: dict[WindowKey, Tally] = field(default_factory=lambda: defaultdict(Tally))


def reference(rows: Iterable[dict[str, Any]], grace_ms: int) -> Reference:
    """One record at a time: the watermark after a record is max time so far - grace; a record
    whose window end is at or below it is a correction; a window closes (once) at the first
    record that takes the watermark to its end."""
    out = Reference()
    open_: dict[WindowKey, Tally] = {}
    max_ms: int | None = None
    for r in rows:
        t = r["time_ms"]
        max_ms = t if max_ms is None else max(max_ms, t)
        mark = max_ms - grace_ms
        for size, size_ms in SIZES_MS.items():
            key = (size, t - t % size_ms, tuple(r[d] for d in DIMS))
            if key[1] + size_ms <= mark:
                out.corrections[key].add(r)
            else:
                open_.setdefault(key, Tally()).add(r)
        for key in [k for k in open_ if k[1] + SIZES_MS[k[0]] <= mark]:
            out.bases[key] = (open_.pop(key), r["offset"])
    out.corrections = dict(out.corrections)
    return out


def emitted(aggregates: Iterable[dict[str, Any]]) -> Reference:
    """The datums in the shape of :func:`reference`; asserts no base is emitted twice."""
    out = Reference()
    for d in aggregates:
        key = (d["window_size"], d["window_start_ms"], tuple(d[k] for k in DIMS))
        tally = Tally(d["count"], Counter({v["value"]: v["count"] for v in d["principals"]}),
                      Counter({v["value"]: v["count"] for v in d["source_ips"]}))
        if d["correction"]:
            summed = out.corrections[key]
            summed.count += tally.count
            summed.principals.update(tally.principals)
            summed.source_ips.update(tally.source_ips)
        else:
            assert key not in out.bases, f"{key} emitted twice"
            out.bases[key] = (tally, d["trigger_offset"])
    out.corrections = dict(out.corrections)
    return out


def run(st: PartitionState, batches: Iterable[Sequence[dict[str, Any]]]
        ) -> Iterator[dict[str, Any]]:
    """Every aggregate datum ``st`` emits for ``batches`` of rows, in order."""
    for batch in batches:
        yield from st.add(table(batch)).aggregates


# --- streams -----------------------------------------------------------------------------------

def stream(seed: int, n: int = 300) -> list[dict[str, Any]]:
    """Rows over ~2.5 hours, mostly in order, some late within a 90 s grace, some far beyond."""
    rng = random.Random(seed)
    rows, clock_ms = [], 0
    for offset in range(n):
        clock_ms += rng.randint(0, 60_000)
        delay_ms = rng.choice([0, 0, 0, 0, rng.randint(1, 90_000), rng.randint(90_000, 400_000),
                               rng.randint(0, 7_200_000) if rng.random() < 0.2 else 0])
        rows.append(row(offset, T0 + max(clock_ms - delay_ms, 0),
                        event_name=rng.choice(["CreateUser", "DeleteUser"]),
                        outcome=rng.choice(["OK", "OK", "AccessDenied"]),
                        principal=rng.choice([ALICE, BOB, None]),
                        source_ip=rng.choice(["192.0.2.1", "192.0.2.2", None]),
                        write_management=rng.random() < 0.7))
    return rows


def chunks(rows: list[dict[str, Any]], seed: int) -> list[list[dict[str, Any]]]:
    rng, out, i = random.Random(seed), [], 0
    while i < len(rows):
        size = rng.randint(1, 40)
        out.append(rows[i:i + size])
        i += size
    return out


def first_of(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def expected_columns(r: dict[str, Any], offset: int) -> dict[str, Any]:
    """The documented definitions of pipeline.aggregates.columns, one record at a time."""
    ui = r.get("userIdentity") or {}
    return {"partition": 3, "offset": offset,
            "time_ms": first_of(parse_event_time(r)[0], NOW_MS),
            "account": first_of(r.get("recipientAccountId"), ui.get("accountId"), ""),
            "region": first_of(r.get("awsRegion"), ""),
            "event_source": first_of(r.get("eventSource"), ""),
            "event_name": first_of(r.get("eventName"), ""),
            "outcome": first_of(r.get("errorCode"), "OK"),
            "identity_type": first_of(ui.get("type"), ""),
            "principal": first_of(ui.get("arn"), ui.get("invokedBy"), ui.get("principalId")),
            "source_ip": r.get("sourceIPAddress"), "user_agent": r.get("userAgent"),
            "write_management": r.get("readOnly") is False and (
                r.get("managementEvent") is True or r.get("eventCategory") == "Management")}


def generated(n: int = 300) -> list[dict[str, Any]]:
    """Generator traffic over ~50 minutes, every 7th record delivered 40 records late."""
    records = list(Generator(5, 3, 2, start_ms=T0 + 1_234, events_per_second=0.1)
                   .records(n))
    delayed = [i for i in range(n) if i % 7 == 3]
    order = [i for i in range(n) if i % 7 != 3]
    for i in delayed:
        order.insert(min(order.index(i - 1) + 40, len(order)) if i else 0, i)
    return [records[i] for i in order]
