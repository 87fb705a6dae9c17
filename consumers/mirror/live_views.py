"""The SIEM views the mirror serves, kept current by a background thread.

A thread re-reads the subscriptions registry every ``refresh_ms`` and builds one
:class:`~pipeline.mirror.views.ViewEncoder` per live view (a subscription whose ``view`` is set
and whose view topic exists). The poll loop never waits for it: the processor takes a new set
with :meth:`LiveViews.take` between batches, so every row of a batch (and every half of a
bisected batch) sees the same views. Only the very first set is waited for (bounded by
``first_timeout_s``), so views registered before the daemon starts hold every record from
the first batch on.

A view picked up later starts with the records mirrored after it was picked up: it is not
back-filled from older events. A view whose topic does not exist yet is skipped with a warning
(``trailpipe siem subscribe`` creates it) and served from the refresh that finds it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.logs import get_logger
from pipeline.mirror.views import ViewEncoder
from pipeline.siem.model import Subscription, View

log = get_logger("consumers.mirror.views")

Load = Callable[[], Mapping[str, Subscription]]
"""Every live subscription by name (raises when the registry cannot be read)."""
ExistingTopics = Callable[[Collection[str]], set[str]]
"""Which of these topic names exist on the cluster."""


@dataclass(frozen=True, slots=True)
class LiveView:
    """One served view: the subscription's name, its view and the encoder built for it."""

    name: str
    view: View
    encoder: ViewEncoder


class LiveViews:
    """The current views (see the module docstring). ``start`` launches the thread; ``close``
    stops it. Safe to call :meth:`take` from the poll loop while the thread refreshes."""

    def __init__(self, load: Load, existing: ExistingTopics, *, refresh_ms: int,
                 first_timeout_s: float = 15.0) -> None:
        self._load, self._existing = load, existing
        self._refresh_s = refresh_ms / 1000
        self._first_timeout_s = first_timeout_s
        self._lock = threading.Lock()
        self._pending: tuple[LiveView, ...] | None = None
        self._served: dict[str, LiveView] = {}
        self._missing: set[str] = set()  # view topics warned about (warned once each)
        self._first = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mirror-views", daemon=True)
        self.refreshes = 0
        self.refresh_failures = 0

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._first_timeout_s)

    def first(self) -> tuple[LiveView, ...]:
        """The first set of views (waits for the first refresh, at most ``first_timeout_s``;
        no views when it did not finish in time: later refreshes bring them)."""
        if not self._first.wait(self._first_timeout_s):
            log.warning("views_not_loaded", waited_s=self._first_timeout_s)
        return self.take() or ()

    def take(self) -> tuple[LiveView, ...] | None:
        """The new set of views if it changed since the last take, else None."""
        with self._lock:
            pending, self._pending = self._pending, None
        return pending

    def refresh(self) -> None:
        """Read the registry once and publish the views when they changed (the thread calls
        this; tests may call it directly). A failed read keeps the current views."""
        try:
            self._refresh()
        finally:
            self._first.set()  # the first set is known (or the first read failed): no wait

    def _refresh(self) -> None:
        try:
            subs = self._load()
            wanted = {name: sub.view for name, sub in subs.items() if sub.view is not None}
            present = self._existing([v.topic for v in wanted.values()]) if wanted else set()
        except Exception as exc:  # an unreachable registry must not stop the mirror
            self.refresh_failures += 1
            log.warning("views_refresh_failed", error=str(exc), error_type=type(exc).__name__)
            return
        self.refreshes += 1
        self._warn_missing({n: v for n, v in wanted.items() if v.topic not in present})
        served = {name: self._encoder_for(name, view)
                  for name, view in sorted(wanted.items()) if view.topic in present}
        if served.keys() != self._served.keys() or any(
                served[n].view != self._served[n].view for n in served):
            self._served = served
            with self._lock:
                self._pending = tuple(served.values())
            log.info("views_changed", views=sorted(served))

    def _encoder_for(self, name: str, view: View) -> LiveView:
        old = self._served.get(name)
        return old if old is not None and old.view == view else \
            LiveView(name, view, ViewEncoder(view))

    def _warn_missing(self, missing: Mapping[str, View]) -> None:
        for name, view in missing.items():
            if name not in self._missing:
                log.warning("view_topic_missing", view=name, topic=view.topic,
                            hint="`trailpipe siem subscribe` creates it; served once it exists")
        self._missing = set(missing)

    def _loop(self) -> None:
        while True:
            self.refresh()
            if self._stop.wait(self._refresh_s):
                return


def registry_views(base_conf: dict[str, Any], topic: str, *, refresh_ms: int) -> LiveViews:
    """:class:`LiveViews` over the registry on ``topic``, read with ``base_conf``'s client
    settings (not started)."""
    from confluent_kafka.admin import AdminClient

    from pipeline.siem.registry import load_subscriptions

    admin = AdminClient(dict(base_conf))
    timeout_s = max(refresh_ms / 1000, 10.0)

    def existing(names: Collection[str]) -> set[str]:
        return set(names) & set(admin.list_topics(timeout=timeout_s).topics)

    return LiveViews(lambda: load_subscriptions(base_conf, topic, timeout_s=timeout_s),
                     existing, refresh_ms=refresh_ms)
