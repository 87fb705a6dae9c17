"""Traffic shapes over event time: deterministic transforms of the generated record stream.

Where :mod:`producers.generator.scenarios` injects short attack sequences, a shape changes
the traffic over minutes or hours, for the aggregator's windows, insights and health checks:

* ``api-rate-spike``: one principal calls one write management API in one account/region at
  ``calls_per_min`` for ``duration_ms``, then stops;
* ``error-rate-spike``: one write API in one account/region is called steadily for the whole
  run (its baseline); during the spike most of those calls fail, at the same call rate;
* ``account-silent``: one (account, region) sends nothing for ``silent_ms``, then resumes;
* ``late-delivery``: a deterministic fraction of records is delivered out of order, later.

Injected records carry ``additionalEventData.trailpipeScenario`` = the shape's name (the
error spike's steady calls outside their failing share: ``error-rate-baseline``). Every choice
(account, region, principal, times, which records are late) derives from the generator's
seed, so ``shaped_records`` is a pure function of its arguments; each shape exposes its
ground truth (:class:`Truth`, or :meth:`LateDelivery.delay_ms`) for tests to assert on.
Injections stop when the generator's stream ends: the run must cover a spike to hold it all.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from pipeline.events.mapping import parse_event_time
from pipeline.events.partition import event_key, make_key
from pipeline.shapes_config import (
    BEYOND_MARGIN_MS,
    MINUTE_MS,
    AccountSilentConfig,
    ApiRateSpikeConfig,
    ErrorRateSpikeConfig,
    LateDeliveryConfig,
    ShapesConfig,
)
from producers.generator.engine import Generator
from producers.generator.shape_calls import Record, Truth, account_at, make_caller, person, workload

__all__ = ["SHAPES", "AccountSilent", "ApiRateSpike", "ErrorRateSpike", "LateDelivery", "Shape",
           "Truth", "build_shapes", "event_ms", "shaped_records"]

BASELINE_MARK = "error-rate-baseline"
"""Marker of the error spike's steady calls that do not fail as part of the spike."""
BASELINE_ERROR = "ThrottlingException"


@functools.lru_cache(maxsize=65_536)
def _parse_ms(event_time: str) -> int | None:
    return parse_event_time({"eventTime": event_time})[0]


def event_ms(record: Mapping[str, Any]) -> int:
    """A record's eventTime as epoch ms; ValueError when it has none that parses."""
    value = record.get("eventTime")
    ms = _parse_ms(value) if isinstance(value, str) else None
    if ms is None:
        raise ValueError(f"record without a valid eventTime: {value!r}")
    return ms


class Shape(Protocol):
    """A transform of a stream of records ordered by eventTime. ``reorders`` shapes change
    the delivery order and are applied after all others."""

    name: str
    reorders: ClassVar[bool]

    def apply(self, records: Iterator[Record]) -> Iterator[Record]: ...


def _interleave(records: Iterator[Record],
                injected: Iterator[tuple[int, Callable[[], Record]]]) -> Iterator[Record]:
    """``records`` with the injected ones (ascending event time, built lazily) merged in by
    event time; stops with ``records``, so an endless injection is fine."""
    nxt = next(injected, None)
    for record in records:
        t = event_ms(record)
        while nxt is not None and nxt[0] <= t:
            yield nxt[1]()
            nxt = next(injected, None)
        yield record


def _slot_ms(start_ms: int, interval_ms: float, j: int, rng: random.Random) -> int:
    """A time inside slot ``j`` = ``[start + j*interval, start + (j+1)*interval)``."""
    return start_ms + math.floor((j + rng.random()) * interval_ms)


def _minute_after(gen: Generator, offset_ms: int) -> int:
    t = gen.start_ms + offset_ms
    return -(-t // MINUTE_MS) * MINUTE_MS


def _rng(gen: Generator, shape: str) -> random.Random:
    return random.Random(f"trailpipe-shape:{gen.seed}:{shape}")


class ApiRateSpike:
    """``api-rate-spike``: ``calls_per_min`` calls by one IAM user or role, one per slot of
    ``60000 / calls_per_min`` ms from the (minute-aligned) start, for ``duration_ms``."""

    name = "api-rate-spike"
    reorders: ClassVar[bool] = False

    def __init__(self, cfg: ApiRateSpikeConfig, gen: Generator) -> None:
        self._caller = make_caller(gen, 0, cfg.api, person, _rng(gen, self.name))
        start = _minute_after(gen, cfg.start_after_ms)
        self._interval_ms = MINUTE_MS / cfg.calls_per_min
        calls = cfg.duration_ms * cfg.calls_per_min // MINUTE_MS
        self.truth = self._caller.truth(self.name, start, start + cfg.duration_ms, calls)

    def apply(self, records: Iterator[Record]) -> Iterator[Record]:
        return _interleave(records, self._calls())

    def _calls(self) -> Iterator[tuple[int, Callable[[], Record]]]:
        rng = self._caller.env.rng
        for j in range(self.truth.calls):
            t = _slot_ms(self.truth.start_ms, self._interval_ms, j, rng)
            yield t, functools.partial(self._caller.call, t, self.name)


class ErrorRateSpike:
    """``error-rate-spike``: one workload role calls the API once per slot of
    ``60000 / calls_per_min`` ms for the whole run. In the spike's window exactly
    ``floor(calls * failing_share)`` calls fail with ``error_code``; elsewhere
    ``baseline_error_share`` of them fail with ThrottlingException (evenly spread)."""

    name = "error-rate-spike"
    reorders: ClassVar[bool] = False

    def __init__(self, cfg: ErrorRateSpikeConfig, gen: Generator) -> None:
        self._cfg, self._first_ms = cfg, gen.start_ms
        self._caller = make_caller(gen, 1, cfg.api, workload, _rng(gen, self.name))
        start = _minute_after(gen, cfg.start_after_ms)
        self._interval_ms = MINUTE_MS / cfg.calls_per_min
        calls = cfg.duration_ms * cfg.calls_per_min // MINUTE_MS
        self.truth = self._caller.truth(self.name, start, start + cfg.duration_ms, calls,
                                        math.floor(calls * cfg.failing_share), cfg.error_code)

    def apply(self, records: Iterator[Record]) -> Iterator[Record]:
        return _interleave(records, self._calls())

    def _calls(self) -> Iterator[tuple[int, Callable[[], Record]]]:
        """Slots are numbered from the spike's start (negative before it), so the window
        holds exactly ``truth.calls`` of them; slot times never precede the first record."""
        rng, start = self._caller.env.rng, self.truth.start_ms
        j = math.ceil((self._first_ms - start) / self._interval_ms)
        while True:
            t = _slot_ms(start, self._interval_ms, j, rng)
            yield t, functools.partial(self._call, t, j)
            j += 1

    def _call(self, t: int, j: int) -> Record:
        if 0 <= j < self.truth.calls and _every(j, self._cfg.failing_share):
            return self._caller.call(t, self.name, self._cfg.error_code)
        if not 0 <= j < self.truth.calls and _every(j, self._cfg.baseline_error_share):
            return self._caller.call(t, BASELINE_MARK, BASELINE_ERROR)
        return self._caller.call(t, BASELINE_MARK)


def _every(j: int, share: float) -> bool:
    """True for ``share`` of consecutive ``j``, evenly spread (floor((j+1)s) > floor(js))."""
    return math.floor((j + 1) * share) > math.floor(j * share)


class AccountSilent:
    """``account-silent``: drops every record keyed (account, region) in the window."""

    name = "account-silent"
    reorders: ClassVar[bool] = False

    def __init__(self, cfg: AccountSilentConfig, gen: Generator) -> None:
        account = account_at(gen, 2).id
        region = _rng(gen, self.name).choice(gen.region_names)
        start = _minute_after(gen, cfg.start_after_ms)
        self._key = make_key(account, region)
        self.truth = Truth(self.name, account, region, start, start + cfg.silent_ms)

    def apply(self, records: Iterator[Record]) -> Iterator[Record]:
        start, end, key = self.truth.start_ms, self.truth.end_ms, self._key
        for record in records:
            if not (start <= event_ms(record) < end and event_key(record) == key):
                yield record


class LateDelivery:
    """``late-delivery``: :meth:`delay_ms` (a hash of the seed and the eventID) says which
    records are late and by how much; a late record is emitted just before the first record
    whose event time reaches its own plus the delay (or at the end of the stream)."""

    name = "late-delivery"
    reorders: ClassVar[bool] = True

    def __init__(self, cfg: LateDeliveryConfig, gen: Generator) -> None:
        self._cfg, self._salt = cfg, f"trailpipe-late:{gen.seed}:".encode()

    def delay_ms(self, record: Mapping[str, Any]) -> int:
        """0 for a record delivered in order, else its delay (event-time ms)."""
        digest = hashlib.blake2b(self._salt + str(record.get("eventID")).encode(),
                                 digest_size=24).digest()
        late, beyond, amount = (int.from_bytes(digest[i:i + 8]) / 2**64 for i in (0, 8, 16))
        cfg = self._cfg
        if late >= cfg.fraction:
            return 0
        if beyond < cfg.beyond_fraction:
            low = cfg.grace_ms + BEYOND_MARGIN_MS + 1
            return low + math.floor(amount * (cfg.beyond_max_delay_ms - low + 1))
        return 1 + math.floor(amount * cfg.max_delay_ms)

    def beyond_grace(self, record: Mapping[str, Any]) -> bool:
        """True when the record is held back more than ``grace_ms`` + BEYOND_MARGIN_MS."""
        return self.delay_ms(record) > self._cfg.grace_ms + BEYOND_MARGIN_MS

    def apply(self, records: Iterator[Record]) -> Iterator[Record]:
        held: list[tuple[int, int, Record]] = []
        for seq, record in enumerate(records):
            t = event_ms(record)
            while held and held[0][0] <= t:
                yield heapq.heappop(held)[2]
            delay = self.delay_ms(record)
            if delay:
                heapq.heappush(held, (t + delay, seq, record))
            else:
                yield record
        while held:
            yield heapq.heappop(held)[2]


SHAPES: Mapping[str, Callable[[ShapesConfig, Generator], Shape]] = {
    ApiRateSpike.name: lambda c, g: ApiRateSpike(c.api_rate_spike, g),
    ErrorRateSpike.name: lambda c, g: ErrorRateSpike(c.error_rate_spike, g),
    AccountSilent.name: lambda c, g: AccountSilent(c.account_silent, g),
    LateDelivery.name: lambda c, g: LateDelivery(c.late_delivery, g),
}
"""Shape name -> builder from the config and the generator the shape applies to."""


def build_shapes(cfg: ShapesConfig, gen: Generator) -> tuple[Shape, ...]:
    """The enabled shapes, bound to ``gen`` (their ground truth is then fixed)."""
    return tuple(SHAPES[name](cfg, gen) for name in cfg.enabled)


def shaped_records(gen: Generator, shapes: Sequence[Shape],
                   count: int | None = None) -> Iterator[Record]:
    """``gen.records(count)`` through ``shapes``: the injecting and filtering ones in the order
    given, then the reordering ones. Yields ``count`` + injected - silenced records (forever
    when ``count`` is None); every record delayed is delivered before the stream ends."""
    stream = gen.records(count)
    for shape in sorted(shapes, key=lambda s: s.reorders):
        stream = shape.apply(stream)
    return stream
