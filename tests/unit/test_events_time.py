"""parse_event_time's integer arithmetic agrees with datetime's over many timestamps."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.events.mapping import INVALID, PRESENT, parse_event_time


def reference_ms(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: str,
                 offset_min: int) -> int | None:
    """Epoch ms the slow, obvious way (None where datetime rejects the fields)."""
    try:
        local = datetime(y, mo, d, h, mi, s, tzinfo=UTC)
    except ValueError:
        return None
    ms = (local - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    return ms + int(frac[:3].ljust(3, "0") or "0") - offset_min * 60_000


def text(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: str, offset_min: int) -> str:
    zone = "Z" if offset_min == 0 else (
        f"{'+' if offset_min > 0 else '-'}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}")
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{'.' + frac if frac else ''}{zone}"


def test_random_timestamps_match_datetime() -> None:
    rng = random.Random(3339)
    for _ in range(20_000):
        fields = (rng.randrange(0, 10_000), rng.randrange(0, 14), rng.randrange(0, 33),
                  rng.randrange(0, 25), rng.randrange(0, 61), rng.randrange(0, 62),
                  "".join(rng.choices("0123456789", k=rng.randrange(0, 10))),
                  rng.randrange(-23 * 60 - 59, 23 * 60 + 60))
        want = reference_ms(*fields)
        got = parse_event_time({"eventTime": text(*fields)})
        assert got == ((None, INVALID) if want is None else (want, PRESENT)), text(*fields)


@pytest.mark.parametrize(("value", "ms"), [
    ("0001-01-01T00:00:00Z", -62135596800000),
    ("9999-12-31T23:59:59.999Z", 253402300799999),
    ("2024-02-29T12:00:00Z", 1709208000000),
    ("1970-01-01T00:00:00+00:01", -60000),
])
def test_extremes(value: str, ms: int) -> None:
    assert parse_event_time({"eventTime": value}) == (ms, PRESENT)


@pytest.mark.parametrize("value", ["0000-01-01T00:00:00Z", "2023-02-29T00:00:00Z",
                                   "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z",
                                   "2024-01-01T00:00:00-00:60"])
def test_invalid_fields(value: str) -> None:
    assert parse_event_time({"eventTime": value}) == (None, INVALID)
