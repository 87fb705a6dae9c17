"""Digest periods: which periods are allowed, where a period ends, and digest keys.

A digest covers the deliveries of ``[start, end)``. With period ``p`` the digester's digests
end on multiples of ``p`` (epoch ms): ``end = start - start % p + p``. Normally ``start`` is
itself a multiple of ``p`` and the digest is one full period; right after a change of period
the first digest runs from the previous digest's end to the next boundary of the new period
(shorter than ``p``), and every later one is aligned again. The chain never skips or overlaps:
each digest starts where the previous one ended, whatever either's period.

Allowed periods are whole minutes from 1 min to 1 h that divide an hour evenly (1, 2, 3, 4, 5,
6, 10, 12, 15, 20, 30, 60 min). Why: every hour boundary is then a period boundary, so a digest
never straddles an hour (nor a day: the key's date folder is the one of every delivery it
lists), hourly lakes and their keys stay exactly what they were, and a digest's start is a
whole minute, which its key names. Under a minute, a digest per period would be mostly
signing overhead and keys (over half a million a year at 1 min already).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pipeline.lake.layout import DIGESTS_DIR, HOUR_MS, digest_key

MINUTE_MS = 60_000
MIN_PERIOD_MS = MINUTE_MS
MAX_PERIOD_MS = HOUR_MS
ALLOWED_PERIODS_MS = tuple(m * MINUTE_MS for m in range(1, 61) if 60 % m == 0)

_KEY_RE = re.compile(
    rf"^{DIGESTS_DIR}/\d{{4}}/\d\d/\d\d/(\d{{4}})-(\d\d)-(\d\d)T(\d\d)(?:-(\d\d))?\.json$")


def period_problem(period_ms: int) -> str | None:
    """None when ``period_ms`` is an allowed digest period, else why it is not."""
    if not MIN_PERIOD_MS <= period_ms <= MAX_PERIOD_MS:
        return (f"digest period {period_ms} ms is outside [{MIN_PERIOD_MS}, {MAX_PERIOD_MS}] "
                "(1 minute to 1 hour)")
    if period_ms not in ALLOWED_PERIODS_MS:
        allowed = ", ".join(str(p // MINUTE_MS) for p in ALLOWED_PERIODS_MS)
        return (f"digest period {period_ms} ms must be a whole number of minutes dividing an "
                f"hour evenly ({allowed} min), so every hour starts a period")
    return None


def period_end(start_ms: int, period_ms: int) -> int:
    """The end of the digest that starts at ``start_ms`` under ``period_ms``: the next
    multiple of the period after ``start_ms``."""
    return start_ms - start_ms % period_ms + period_ms


def period_floor(ms: int, period_ms: int) -> int:
    """The start of the aligned period holding ``ms``."""
    return ms - ms % period_ms


def start_of_digest_key(key: str) -> int | None:
    """The start (ms) a digest key stands for, or None when ``key`` is not a digest key in
    its canonical form (date folder of its own day, no ``-00`` minutes)."""
    m = _KEY_RE.match(key)
    if m is None:
        return None
    y, mo, d, h = (int(x) for x in m.group(1, 2, 3, 4))
    minute = int(m.group(5) or 0)
    try:
        start = int(datetime(y, mo, d, h, minute, tzinfo=UTC).timestamp() * 1000)
    except ValueError:
        return None
    return start if digest_key(start) == key else None
