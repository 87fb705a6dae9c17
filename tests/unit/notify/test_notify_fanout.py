"""Fan-out lanes: parallel, budget per flush, 410 disables the route for good."""

from __future__ import annotations

import random
import threading
import time

from pipeline.notify.config import KafkaRoute, Match, Retry
from pipeline.notify.fanout import Fanout, Item, Lane
from pipeline.notify.retry import DeliveryFailed, RouteGone


class Recorder:
    def __init__(self, errors=(), delay_s: float = 0.0) -> None:
        self.errors = list(errors)
        self.sent: list[str] = []
        self.delay_s = delay_s

    def send(self, alert, raw) -> None:
        time.sleep(self.delay_s)
        if self.errors:
            error = self.errors.pop(0)
            if error is not None:
                raise error
        self.sent.append(alert["alert_id"])

    def close(self) -> None:
        pass


def route(name: str, **retry) -> KafkaRoute:
    return KafkaRoute(type="kafka", name=name, topic=name,
                      retry=Retry(initial_backoff_ms=1, max_backoff_ms=2, **retry),
                      match=Match(min_severity="medium"))


def items(make_alert, n: int) -> list[Item]:
    return [Item(make_alert(key=f"k{i}"), b"raw") for i in range(n)]


def test_routes_for_uses_each_routes_match(make_alert) -> None:
    fanout = Fanout([Lane(route("a"), Recorder())])
    assert fanout.routes_for(make_alert(severity="high")) == ["a"]
    assert fanout.routes_for(make_alert(severity="low")) == []
    fanout.close()


def test_a_slow_lane_does_not_delay_another(make_alert) -> None:
    slow, fast = Recorder(delay_s=0.3), Recorder()
    done_at: dict[str, float] = {}
    fast_send = fast.send

    def timed(alert, raw) -> None:
        fast_send(alert, raw)
        done_at[alert["alert_id"]] = time.monotonic()
    fast.send = timed  # type: ignore[method-assign]
    fanout = Fanout([Lane(route("slow"), slow), Lane(route("fast"), fast)])
    work = items(make_alert, 3)
    start = time.monotonic()
    results = fanout.deliver({"slow": work, "fast": work})
    assert time.monotonic() - start >= 0.9
    assert max(done_at.values()) - start < 0.3
    assert all(r.error is None for rs in results.values() for r in rs)
    assert len(slow.sent) == len(fast.sent) == 3
    fanout.close()


def test_a_spent_budget_fails_the_rest_of_the_flush(make_alert) -> None:
    down = Recorder(errors=[DeliveryFailed("refused")] * 10_000, delay_s=0.01)
    lane = Lane(route("down", budget_ms=100), down)
    fanout = Fanout([lane], rng=random.Random(1))
    start = time.monotonic()
    results = fanout.deliver({"down": items(make_alert, 5)})["down"]
    assert time.monotonic() - start < 1.0
    assert [r.error is not None for r in results] == [True] * 5
    assert "retry budget spent" in (results[0].error or "")
    assert "budget of 100 ms spent" in (results[-1].error or "")
    assert lane.stats.failed == 5 and lane.stats.retried > 0 and lane.stats.delivered == 0
    fanout.close()


def test_410_disables_the_route_for_the_process_lifetime(make_alert) -> None:
    gone = Recorder(errors=[None, RouteGone("HTTP 410 Gone")])
    lane = Lane(route("gone"), gone)
    fanout = Fanout([lane])
    first = fanout.deliver({"gone": items(make_alert, 3)})["gone"]
    assert first[0].error is None
    assert first[1].gone and "410" in (first[1].error or "")
    assert not first[2].gone and "route disabled" in (first[2].error or "")
    later = fanout.deliver({"gone": items(make_alert, 2)})["gone"]
    assert all("route disabled" in (r.error or "") for r in later)
    assert len(gone.sent) == 1 and lane.stats.disabled == "HTTP 410 Gone"
    assert lane.stats.as_dict()["failed"] == 4
    fanout.close()


def test_lanes_run_in_separate_threads(make_alert) -> None:
    seen: set[str] = set()
    barrier = threading.Barrier(2, timeout=5)

    class Meeting(Recorder):
        def send(self, alert, raw) -> None:
            barrier.wait()  # both lanes must be sending at once, or this times out
            seen.add(threading.current_thread().name)

    fanout = Fanout([Lane(route("a"), Meeting()), Lane(route("b"), Meeting())])
    work = items(make_alert, 1)
    results = fanout.deliver({"a": work, "b": work})
    assert all(r.error is None for rs in results.values() for r in rs) and len(seen) == 2
    fanout.close()


def test_a_healthy_but_slow_lane_defers_the_rest_to_the_next_flush(make_alert) -> None:
    now = [0.0]

    class Slow(Recorder):  # each send takes 60 ms of the fake clock
        def send(self, alert, raw) -> None:
            now[0] += 0.06
            super().send(alert, raw)
    slow = Slow()
    lane = Lane(route("slow", budget_ms=100), slow)
    fanout = Fanout([lane], clock=lambda: now[0])
    work = items(make_alert, 5)
    results = fanout.deliver({"slow": work})["slow"]
    delivered = [r for r in results if r.error is None and not r.deferred]
    deferred = [r for r in results if r.deferred]
    assert len(delivered) == 2 and len(deferred) == 3 and all(r.error is None for r in deferred)
    assert lane.stats.deferred == 3 and lane.stats.failed == 0
    again = fanout.deliver({"slow": [r.item for r in deferred]})["slow"]
    assert sum(not r.deferred for r in again) >= 1  # every flush makes progress
    fanout.close()


def test_a_zero_budget_still_attempts_one_alert_per_flush(make_alert) -> None:
    fanout = Fanout([Lane(route("z", budget_ms=0), Recorder())])
    results = fanout.deliver({"z": items(make_alert, 3)})["z"]
    assert [r.deferred for r in results] == [False, True, True] and results[0].error is None
    fanout.close()
