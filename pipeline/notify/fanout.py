"""Fan-out: every alert to every route that matches it, routes in parallel.

A :class:`Lane` is one route and its destination client. :meth:`Fanout.deliver` gives each
lane its alerts in one thread per lane and waits for all: a slow or failing destination costs
its own lane's retry budget and never delays the other lanes' deliveries. Within a flush a
lane delivers in order, retrying each alert (see :func:`pipeline.notify.retry.deliver`) until
the lane's budget for this flush is spent. Then, if its last attempt failed, the rest come
back as failures with their reason (the caller dead-letters them); if it succeeded (a healthy
but slow or rate-limited destination) the rest come back *deferred*, to be tried in the next
flush. Every flush attempts at least one alert, so a lane always makes progress. A lane whose
destination answered 410 is disabled for the life of the process: its alerts come back as
failures at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.logs import get_logger
from pipeline.notify.alerts import Alert, delivery_key, matches
from pipeline.notify.config import KafkaRoute, SnsRoute, SyslogRoute, WebhookRoute
from pipeline.notify.retry import Clock, RouteGone, Sleep, deliver

log = get_logger("pipeline.notify.fanout")

RouteConfig = WebhookRoute | SnsRoute | SyslogRoute | KafkaRoute


class Destination(Protocol):
    """A destination client: ``send`` delivers one alert or raises DeliveryFailed or
    RouteGone (``raw`` is the alert's Avro bytes as consumed)."""

    def send(self, alert: Alert, raw: bytes) -> None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class RouteStats:
    """Per-route counters: alerts delivered, retries made, deferrals to a later flush, alerts
    that failed (budget spent, not retryable, or route disabled), and of those the ones
    dead-lettered."""

    delivered: int = 0
    retried: int = 0
    deferred: int = 0
    failed: int = 0
    dead_lettered: int = 0
    disabled: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "retried": self.retried,
                "deferred": self.deferred, "failed": self.failed,
                "dead_lettered": self.dead_lettered, "disabled": self.disabled}


@dataclass(frozen=True, slots=True)
class Item:
    """One alert to deliver: the decoded alert and its raw Avro bytes."""

    alert: Alert
    raw: bytes


@dataclass(frozen=True, slots=True)
class Result:
    """How one item fared on one lane: delivered when ``error`` is None and not ``deferred``;
    ``gone`` True for the failure that disabled the lane."""

    item: Item
    error: str | None = None
    gone: bool = False
    deferred: bool = False


@dataclass(slots=True)
class Lane:
    route: RouteConfig
    destination: Destination
    stats: RouteStats = field(default_factory=RouteStats)

    def run(self, items: Sequence[Item], *, clock: Clock, sleep: Sleep,
            rng: random.Random) -> list[Result]:
        """Deliver ``items`` in order within this flush's budget (see the module docstring)."""
        deadline_s = clock() + self.route.retry.budget_ms / 1000
        results: list[Result] = []
        for item in items:
            if results and clock() >= deadline_s:
                results.append(self._spent(item, results[-1]))
            else:
                results.append(self._one(item, deadline_s, clock=clock, sleep=sleep, rng=rng))
        return results

    def _spent(self, item: Item, last: Result) -> Result:
        """The budget is spent: defer behind a success, fail behind a failure."""
        if last.error is None:
            self.stats.deferred += 1
            return Result(item, deferred=True)
        return self._failed(item, f"route budget of {self.route.retry.budget_ms} ms spent in "
                                  f"this flush (last error: {last.error})")

    def _one(self, item: Item, deadline_s: float, *, clock: Clock, sleep: Sleep,
             rng: random.Random) -> Result:
        if self.stats.disabled is not None:
            return self._failed(item, f"route disabled: {self.stats.disabled}")
        try:
            outcome = deliver(lambda: self.destination.send(item.alert, item.raw),
                              self.route.retry, deadline_s=deadline_s, clock=clock,
                              sleep=sleep, rng=rng)
        except RouteGone as exc:
            self.stats.disabled = str(exc)
            log.error("route_disabled", route=self.route.name, reason=str(exc))
            return self._failed(item, f"route disabled: {exc}", gone=True)
        except Exception as exc:  # a client bug must not stop the other alerts
            return self._failed(item, f"{type(exc).__name__}: {exc}")
        self.stats.retried += outcome.retries
        if outcome.error is not None:
            return self._failed(item, outcome.error)
        self.stats.delivered += 1
        return Result(item)

    def _failed(self, item: Item, reason: str, *, gone: bool = False) -> Result:
        self.stats.failed += 1
        log.warning("alert_undelivered", route=self.route.name,
                    key=delivery_key(item.alert), reason=reason)
        return Result(item, reason, gone)


class Fanout:
    """Delivers items to lanes, one thread per lane (see the module docstring)."""

    def __init__(self, lanes: Sequence[Lane], *, clock: Clock = time.monotonic,
                 sleep: Sleep = time.sleep, rng: random.Random | None = None) -> None:
        self.lanes = {lane.route.name: lane for lane in lanes}
        self._clock, self._sleep = clock, sleep
        self._rng = rng or random.Random()
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(lanes)),
                                        thread_name_prefix="notify")

    def routes_for(self, alert: Alert) -> list[str]:
        """Names of the routes whose match takes ``alert`` (disabled ones included: their
        alerts are dead-lettered, never dropped)."""
        return [name for name, lane in self.lanes.items() if matches(lane.route.match, alert)]

    def deliver(self, work: Mapping[str, Sequence[Item]]) -> dict[str, list[Result]]:
        """Deliver ``work`` (items per route name) on every lane in parallel; returns each
        lane's results once all lanes are done."""
        def run(name: str) -> list[Result]:
            return self.lanes[name].run(work[name], clock=self._clock, sleep=self._sleep,
                                        rng=self._rng)

        futures = {name: self._pool.submit(run, name) for name, items in work.items() if items}
        return {name: future.result() for name, future in futures.items()}

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for lane in self.lanes.values():
            try:
                lane.destination.close()
            except Exception as exc:  # closing is best effort
                log.warning("destination_close_failed", route=lane.route.name, error=str(exc))
