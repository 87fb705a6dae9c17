"""Generator traffic shapes: determinism, ground truth, spike rates, silence, late delivery."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.events.partition import event_key, make_key
from pipeline.shapes_config import (
    MINUTE_MS,
    AccountSilentConfig,
    ApiRateSpikeConfig,
    ErrorRateSpikeConfig,
    LateDeliveryConfig,
    ShapesConfig,
)
from producers.generator.engine import Generator
from producers.generator.scenarios import scenario_of
from producers.generator.shapes import (
    BASELINE_ERROR,
    BASELINE_MARK,
    AccountSilent,
    ApiRateSpike,
    ErrorRateSpike,
    LateDelivery,
    Shape,
    build_shapes,
    event_ms,
    shaped_records,
)

START_MS = 1_717_200_123_456  # not minute-aligned on purpose
RATE = 20.0  # events per second of event time, as the aggregator tests use
RUN = int(60 * 60 * RATE)  # one hour of event time
Record = dict[str, Any]
ALL = ShapesConfig(
    enabled=["api-rate-spike", "error-rate-spike", "account-silent", "late-delivery"],
    api_rate_spike=ApiRateSpikeConfig(start_after_ms=30 * MINUTE_MS, duration_ms=10 * MINUTE_MS,
                                      calls_per_min=60),
    error_rate_spike=ErrorRateSpikeConfig(start_after_ms=30 * MINUTE_MS,
                                          duration_ms=10 * MINUTE_MS, calls_per_min=6,
                                          failing_share=0.8, baseline_error_share=0.1),
    account_silent=AccountSilentConfig(start_after_ms=20 * MINUTE_MS, silent_ms=15 * MINUTE_MS),
    late_delivery=LateDeliveryConfig(fraction=0.05, max_delay_ms=MINUTE_MS, beyond_fraction=0.1,
                                     grace_ms=2 * MINUTE_MS, beyond_max_delay_ms=10 * MINUTE_MS))


def generator(seed: int = 9) -> Generator:
    return Generator(seed, 5, 3, start_ms=START_MS, events_per_second=RATE)


def run(cfg: ShapesConfig, seed: int = 9, count: int = RUN) -> tuple[tuple[Shape, ...],
                                                                        list[Record]]:
    gen = generator(seed)
    shapes = build_shapes(cfg, gen)
    return shapes, list(shaped_records(gen, shapes, count))


@cache
def plain() -> tuple[Record, ...]:
    return tuple(generator().records(RUN))


@cache
def shaped() -> tuple[tuple[Shape, ...], tuple[Record, ...]]:
    shapes, records = run(ALL)
    return shapes, tuple(records)


def shape(kind: type) -> Any:
    return next(s for s in shaped()[0] if isinstance(s, kind))


def per_minute(records: Iterable[Record]) -> collections.Counter[int]:
    return collections.Counter(event_ms(r) // MINUTE_MS * MINUTE_MS for r in records)


def same_call(r: Record, truth: Any) -> bool:
    return (r["recipientAccountId"], r["awsRegion"], r["eventSource"], r["eventName"]) == (
        truth.account, truth.region, truth.event_source, truth.event_name)


# --- determinism -------------------------------------------------------------------------------

def test_same_seed_same_stream_and_truth_other_seed_differs() -> None:
    short = RUN // 6
    cfg = ALL.model_copy(update={"api_rate_spike": ApiRateSpikeConfig(start_after_ms=MINUTE_MS)})
    a_shapes, a = run(cfg, 4, short)
    b_shapes, b = run(cfg, 4, short)
    c_shapes, c = run(cfg, 5, short)
    assert a == b
    assert [getattr(s, "truth", None) for s in a_shapes] == [
        getattr(s, "truth", None) for s in b_shapes]
    assert [r["eventID"] for r in a] != [r["eventID"] for r in c]
    assert a_shapes[0].truth != c_shapes[0].truth  # type: ignore[attr-defined]


def test_reordering_shapes_apply_last_whatever_the_order_given() -> None:
    reversed_cfg = ALL.model_copy(update={"enabled": list(reversed(ALL.enabled))})
    _, records = run(reversed_cfg, count=RUN // 4)
    half = len(records) // 2  # the end differs: a shorter run delivers what it held sooner
    assert records[:half] == list(shaped()[1][:half])


def test_no_shapes_is_the_generator_stream() -> None:
    assert list(shaped_records(generator(), [], 500)) == list(plain()[:500])


# --- api-rate-spike ----------------------------------------------------------------------------

def test_rate_spike_ground_truth_matches_its_records() -> None:
    truth = shape(ApiRateSpike).truth
    spike = [r for r in shaped()[1] if scenario_of(r) == "api-rate-spike"]
    assert truth.start_ms % MINUTE_MS == 0
    assert truth.start_ms - START_MS >= 30 * MINUTE_MS
    assert truth.end_ms - truth.start_ms == 10 * MINUTE_MS
    assert len(spike) == truth.calls == 600
    for r in spike:
        assert truth.start_ms <= event_ms(r) < truth.end_ms
        assert same_call(r, truth)
        assert r["userIdentity"]["arn"] == truth.principal_arn
        assert r["userIdentity"]["type"] in ("IAMUser", "AssumedRole")
        assert r["userAgent"] == truth.user_agent
        assert r["readOnly"] is False and r["managementEvent"] is True
        assert "errorCode" not in r


def test_rate_spike_is_calls_per_min_every_minute_and_far_above_normal() -> None:
    truth = shape(ApiRateSpike).truth
    marked = per_minute(r for r in shaped()[1] if scenario_of(r) == "api-rate-spike")
    assert marked == dict.fromkeys(range(truth.start_ms, truth.end_ms, MINUTE_MS), 60)
    minutes = per_minute(r for r in shaped()[1] if same_call(r, truth))
    before = sum(n for m, n in minutes.items() if m < truth.start_ms)
    normal_per_min = before / ((truth.start_ms - START_MS) / MINUTE_MS)
    assert normal_per_min * 20 < 60


# --- error-rate-spike --------------------------------------------------------------------------

def test_error_spike_fails_in_its_window_at_the_normal_call_rate() -> None:
    truth = shape(ErrorRateSpike).truth
    steady = [r for r in shaped()[1] if scenario_of(r) in ("error-rate-spike", BASELINE_MARK)]
    assert steady and all(same_call(r, truth) for r in steady)
    assert all(r["userIdentity"]["arn"] == truth.principal_arn for r in steady)
    inside = [r for r in steady if truth.start_ms <= event_ms(r) < truth.end_ms]
    failed = [r for r in inside if "errorCode" in r]
    assert len(inside) == truth.calls == 60
    assert len(failed) == truth.errors == 48
    assert {r["errorCode"] for r in failed} == {"AccessDeniedException"}
    assert all(scenario_of(r) == "error-rate-spike" for r in failed)
    # The same call rate before, during and after: only the error rate changes.
    first_full = (START_MS // MINUTE_MS + 1) * MINUTE_MS
    last_full = (event_ms(plain()[-1]) // MINUTE_MS) * MINUTE_MS
    minutes = per_minute(steady)
    assert {minutes[m] for m in range(first_full, last_full, MINUTE_MS)} == {6}


def test_error_spike_baseline_errors_are_rare_and_other_codes() -> None:
    truth = shape(ErrorRateSpike).truth
    outside = [r for r in shaped()[1] if scenario_of(r) == BASELINE_MARK
               and not truth.start_ms <= event_ms(r) < truth.end_ms]
    errors = [r for r in outside if "errorCode" in r]
    assert {r["errorCode"] for r in errors} == {BASELINE_ERROR}
    assert len(errors) == pytest.approx(0.1 * len(outside), abs=1)


# --- account-silent ----------------------------------------------------------------------------

def test_silent_source_sends_nothing_in_its_window_and_resumes() -> None:
    truth = shape(AccountSilent).truth
    key = make_key(truth.account, truth.region)
    mine = [event_ms(r) for r in shaped()[1] if event_key(r) == key]
    assert not [t for t in mine if truth.start_ms <= t < truth.end_ms]
    assert any(t < truth.start_ms for t in mine) and any(t >= truth.end_ms for t in mine)
    # It was sending before: the plain stream has records of it in the window.
    assert [r for r in plain() if event_key(r) == key
            and truth.start_ms <= event_ms(r) < truth.end_ms]
    assert truth.end_ms - truth.start_ms == 15 * MINUTE_MS


def test_each_shape_uses_its_own_account() -> None:
    accounts = {shape(k).truth.account for k in (ApiRateSpike, ErrorRateSpike, AccountSilent)}
    assert len(accounts) == 3


def test_silence_removes_only_its_key() -> None:
    truth = shape(AccountSilent).truth
    key = make_key(truth.account, truth.region)
    shaped_ids = {r["eventID"] for r in shaped()[1]}
    missing = [r for r in plain() if r["eventID"] not in shaped_ids]
    assert missing and all(event_key(r) == key for r in missing)


# --- late-delivery -----------------------------------------------------------------------------

def late_only(seed: int = 9, count: int = 30_000) -> tuple[LateDelivery, list[Record]]:
    shapes, records = run(ShapesConfig(enabled=["late-delivery"],
                                       late_delivery=ALL.late_delivery), seed, count)
    assert isinstance(shapes[0], LateDelivery)
    return shapes[0], records


def test_late_delivery_delays_the_configured_fraction_and_keeps_every_record() -> None:
    late, records = late_only()
    original = plain()[:30_000]
    assert sorted(r["eventID"] for r in records) == sorted(r["eventID"] for r in original)
    delayed = [r for r in original if late.delay_ms(r)]
    assert len(delayed) == pytest.approx(0.05 * len(original), abs=4 * (1500 * 0.95) ** 0.5)
    beyond = [r for r in delayed if late.beyond_grace(r)]
    assert len(beyond) == pytest.approx(0.1 * len(delayed), abs=4 * (150 * 0.9) ** 0.5)
    for r in delayed:
        d = late.delay_ms(r)
        assert 1 <= d <= MINUTE_MS or 4 * MINUTE_MS < d <= 10 * MINUTE_MS
        assert late.beyond_grace(r) == (d > 4 * MINUTE_MS)


def test_late_records_keep_event_time_and_arrive_when_the_stream_reaches_the_delay() -> None:
    late, records = late_only()
    by_id = {r["eventID"]: r for r in plain()[:30_000]}
    assert all(r == by_id[r["eventID"]] for r in records)  # eventTime and all unchanged
    on_time = [event_ms(r) for r in records if not late.delay_ms(r)]
    assert on_time == sorted(on_time)
    newest = -1
    for r in records:
        t, d = event_ms(r), late.delay_ms(r)
        if d:
            assert newest < t + d  # not held longer than needed
        else:
            newest = t
    next_on_time = None  # and not released early: the next on-time record has reached t + d
    for r in reversed(records):
        d = late.delay_ms(r)
        if not d:
            next_on_time = event_ms(r)
        elif next_on_time is not None:
            assert next_on_time >= event_ms(r) + d


def test_event_time_monotonic_except_delayed_records() -> None:
    late = shape(LateDelivery)
    times = [event_ms(r) for r in shaped()[1] if not late.delay_ms(r)]
    assert times == sorted(times)
    out_of_order = sum(1 for a, b in zip(shaped()[1], shaped()[1][1:], strict=False)
                       if event_ms(b) < event_ms(a))
    assert out_of_order > 0


def test_late_delivery_of_injected_records_too() -> None:
    late = shape(LateDelivery)
    spike = [r for r in shaped()[1] if scenario_of(r) == "api-rate-spike"]
    assert any(late.delay_ms(r) for r in spike)


# --- config ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    {"enabled": ["late-delivery", "late-delivery"]},
    {"enabled": ["no-such-shape"]},
    {"error_rate_spike": {"failing_share": 0.01, "baseline_error_share": 0.02}},
    {"late_delivery": {"beyond_fraction": 0.1, "max_delay_ms": 600_000, "grace_ms": 60_000}},
    {"late_delivery": {"beyond_fraction": 0.1, "grace_ms": 60_000,
                       "beyond_max_delay_ms": 180_000}},
    {"api_rate_spike": {"calls_per_min": 0}},
    {"account_silent": {"silent": 1}},
])
def test_bad_config_is_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ShapesConfig.model_validate(bad)


def test_iam_spike_lands_in_us_east_1() -> None:
    cfg = ShapesConfig(enabled=["api-rate-spike"],
                       api_rate_spike=ApiRateSpikeConfig(api="iam:CreateAccessKey",
                                                         start_after_ms=0, duration_ms=60_000))
    shapes, records = run(cfg, count=5_000)
    truth = shapes[0].truth  # type: ignore[attr-defined]
    spike: Sequence[Record] = [r for r in records if scenario_of(r) == "api-rate-spike"]
    assert truth.region == "us-east-1" and len(spike) == truth.calls == 60
    assert {(r["eventName"], r["awsRegion"]) for r in spike} == {("CreateAccessKey", "us-east-1")}
