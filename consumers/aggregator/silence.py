"""Silent sources: an (account, region) that has been sending and then sends nothing for
``[health] silent_after_ms`` of processing time gets one ``source_silent`` health record
("logging may be stopped or misconfigured"); its next event gets one ``source_resumed``.

Processing (wall-clock) time, not event time: a trail that stopped delivering is silent
whatever the timestamps of the events it sent before. After a restart a source counts as seen
at the restart at the latest, so downtime of the aggregator itself is not reported as silence.
State per events partition is in the changelog (keys ``src|<account>|<region>``), written when
a source turns silent or resumes, or when its last-seen time moved by a quarter of the limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.health.record import health_datum

PREFIX = "src"


@dataclass(slots=True)
class Source:
    seen_ms: int
    silent: bool = False
    written_ms: int = -1


class SilentSources:
    """The sources of one events partition (see the module docstring)."""

    def __init__(self, silent_after_ms: int, started_ms: int) -> None:
        self.silent_after_ms, self.started_ms = silent_after_ms, started_ms
        self.sources: dict[tuple[str, str], Source] = {}
        self._dirty: set[tuple[str, str]] = set()

    def seen(self, sources: Iterable[tuple[str, str]], now_ms: int) -> list[dict[str, Any]]:
        """Record activity; a ``source_resumed`` health datum for each source that was silent."""
        out = []
        for key in sources:
            src = self.sources.get(key)
            if src is None:
                src = self.sources[key] = Source(now_ms)
                self._dirty.add(key)
            elif src.silent:
                out.append(self._datum(key, "source_resumed", now_ms, src.seen_ms))
                src.silent = False
                self._dirty.add(key)
            elif now_ms - src.written_ms >= self.silent_after_ms // 4:
                self._dirty.add(key)
            src.seen_ms = now_ms
        return out

    def check(self, now_ms: int) -> list[dict[str, Any]]:
        """A ``source_silent`` datum for each source silent for the limit (once per silence)."""
        out = []
        for key, src in self.sources.items():
            if not src.silent and now_ms - max(src.seen_ms, self.started_ms) \
                    >= self.silent_after_ms:
                src.silent = True
                self._dirty.add(key)
                out.append(self._datum(key, "source_silent", now_ms, src.seen_ms))
        return out

    def _datum(self, key: tuple[str, str], status: str, now_ms: int, seen_ms: int
               ) -> dict[str, Any]:
        account, region = key
        quiet_min = (now_ms - seen_ms) / 60_000
        message = (f"no events from account {account or '?'} in {region or '?'} for "
                   f"{quiet_min:.1f} min: logging may be stopped or misconfigured"
                   if status == "source_silent" else
                   f"events from account {account or '?'} in {region or '?'} again after "
                   f"{quiet_min:.1f} min")
        return health_datum("aggregator", status, f"{account}|{region}", message, at_ms=now_ms,
                            metrics={"silent_ms": now_ms - seen_ms},
                            details={"account": account, "region": region,
                                     "last_seen_ms": seen_ms})

    def changes(self) -> Iterator[tuple[str, bytes | None]]:
        dirty, self._dirty = self._dirty, set()
        for key in sorted(dirty):
            src = self.sources[key]
            src.written_ms = src.seen_ms
            yield "|".join((PREFIX, *key)), orjson.dumps(
                {"seen_ms": src.seen_ms, "silent": src.silent})

    def restore(self, key: str, value: bytes) -> None:
        _, account, region = key.split("|", 2)
        raw = orjson.loads(value)
        self.sources[(account, region)] = Source(raw["seen_ms"], raw["silent"], raw["seen_ms"])
