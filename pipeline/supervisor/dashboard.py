"""The live dashboard of ``trailpipe run``: each child's ``/metrics`` scraped (parsed with
``prometheus_client.parser``), folded into one :class:`View` with the supervisor's child states
and restart events, and shown as a rich table on a terminal or as one JSON object otherwise.

Counters restart at 0 when a child restarts; the board carries what the previous run counted,
so totals never go backwards (rates are per scrape interval, never negative).
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from pipeline.metrics import names
from pipeline.supervisor.policy import RestartEvent
from pipeline.supervisor.process import ChildStatus

ALERTS_BY_SEVERITY = names.ALERTS
LAKE_OBJECTS = names.EXTRAS["archiver"]["objects_written"].name
LAKE_ROWS = names.EXTRAS["archiver"]["rows_written"].name
LAKE_BYTES = names.EXTRAS["archiver"]["bytes_written"].name
LAKE_WRITER = "archiver"
NEW_ALERTS = names.EXTRAS["alerter"]["alerts"].name
LATEST_EVENTS = 5
SEVERITIES = ("critical", "high", "medium", "low", "info")
"""Display order of alert severities (others follow, sorted)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One scrape of one daemon, summed over labels. Every field but ``lag`` and
    ``silent_sources`` (gauges) is a counter; ``alerts`` is by severity."""

    consumed: float = 0
    outputs: float = 0
    dead_letters: float = 0
    kafka_errors: float = 0
    warnings: float = 0  # log lines at warning or worse (librdkafka's included)
    lake_objects: float = 0
    lake_rows: float = 0
    lake_bytes: float = 0
    new_alerts: float = 0  # the alerter's alerts, whether or not it exports their severities
    insights: float = 0
    windows: float = 0  # aggregate windows the aggregator emitted
    open_windows: float = 0  # a gauge: windows still within their grace
    lag: float = 0
    silent_sources: float = 0  # a gauge, like lag
    alerts: Mapping[str, float] = field(default_factory=dict)

    def plus(self, other: Sample) -> Sample:
        """Counters added (gauges are ``self``'s): what a restarted child adds to its past."""
        sums = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)
                if f.name not in _GAUGES}
        alerts = {k: self.alerts.get(k, 0) + other.alerts.get(k, 0)
                  for k in {*self.alerts, *other.alerts}}
        return replace(self, alerts=alerts, **sums)


# Not summed across restarts (alerts: summed below, by severity).
_GAUGES = ("lag", "silent_sources", "open_windows", "alerts")
_SCALARS = {names.CONSUMED: "consumed", names.OUTPUTS: "outputs",
            names.DEAD_LETTERS: "dead_letters", names.KAFKA_ERRORS: "kafka_errors",
            names.LOG_WARNINGS: "warnings",
            LAKE_OBJECTS: "lake_objects", LAKE_ROWS: "lake_rows",
            LAKE_BYTES: "lake_bytes", NEW_ALERTS: "new_alerts",
            names.EXTRAS["aggregator"]["insights"].name: "insights",
            names.EXTRAS["aggregator"]["windows"].name: "windows",
            names.EXTRAS["aggregator"]["open_windows"].name: "open_windows",
            names.EXTRAS["aggregator"]["silent_sources"].name: "silent_sources",
            names.LAG: "lag"}


def parse_metrics(text: str) -> Sample:
    """A daemon's ``/metrics`` text as a :class:`Sample` (metrics it does not export: 0)."""
    sums: dict[str, float] = {}
    alerts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in _SCALARS:
                key = _SCALARS[s.name]
                sums[key] = sums.get(key, 0) + s.value
            elif s.name == ALERTS_BY_SEVERITY:
                severity = s.labels.get("severity", "unknown")
                alerts[severity] = alerts.get(severity, 0) + s.value
    return Sample(alerts=alerts, **sums)


def scrape(port: int, timeout_s: float = 0.5) -> Sample | None:
    """``http://127.0.0.1:PORT/metrics`` parsed; None while the child does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                    timeout=timeout_s) as resp:
            return parse_metrics(resp.read().decode())
    except (OSError, urllib.error.URLError, ValueError):
        return None


def free_port_base(first: int, count: int, host: str = "127.0.0.1") -> int:
    """The lowest port ≥ ``first`` starting ``count`` consecutive ports free to bind now
    (another program may still take one before a child binds it: the child then exits 2)."""
    base = first
    while base + count <= 65536:
        taken = next((p for p in range(base, base + count) if not _bindable(host, p)), None)
        if taken is None:
            return base
        base = taken + 1
    raise OSError(f"no {count} consecutive free ports from {first}")


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Row:
    """One child on the dashboard."""

    name: str
    state: str  # up | restarting | given up | stopped
    restarts: int
    total: Sample
    in_per_s: float
    out_per_s: float
    scraped: bool  # False while its /metrics does not answer (starting, or no endpoint)

    @property
    def has_metrics(self) -> bool:
        """Its /metrics answered at least once (a child may serve none)."""
        return self.scraped or self.total != Sample()


@dataclass(frozen=True, slots=True)
class View:
    """Everything the dashboard shows at one moment."""

    uptime_s: float
    config: str
    rows: tuple[Row, ...]
    events: tuple[str, ...]  # the latest restart events, oldest first
    latest_alerts: tuple[str, ...] = ()  # the newest alert openings, oldest first

    def alerts(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for row in self.rows:
            for severity, n in row.total.alerts.items():
                found[severity] = found.get(severity, 0) + n
        order = [s for s in SEVERITIES if s in found] + sorted(set(found) - set(SEVERITIES))
        return {s: found[s] for s in order}

    def total(self, key: str, daemon: str | None = None) -> float:
        """A :class:`Sample` field summed over the children (or of ``daemon`` only)."""
        return float(sum(getattr(row.total, key) for row in self.rows
                         if daemon is None or row.name == daemon))

    def lake(self) -> tuple[float, float, float]:
        """Objects, rows and bytes the archiver wrote (the aggregator's tables not counted)."""
        return (self.total("lake_objects", LAKE_WRITER), self.total("lake_rows", LAKE_WRITER),
                self.total("lake_bytes", LAKE_WRITER))

    def as_json(self) -> dict[str, Any]:
        """The numbers of the dashboard as one JSON-ready object."""
        daemons = {r.name: {"state": r.state, "restarts": r.restarts} | ({
                            "consumed": r.total.consumed, "outputs": r.total.outputs,
                            "in_per_s": round(r.in_per_s, 1), "out_per_s": round(r.out_per_s, 1),
                            "lag": r.total.lag, "dead_letters": r.total.dead_letters,
                            "kafka_errors": r.total.kafka_errors,
                            "warnings": r.total.warnings} if r.has_metrics else {})
                   for r in self.rows}
        return {"uptime_s": round(self.uptime_s, 1), "config": self.config, "daemons": daemons,
                "alerts": self.total("new_alerts"), "alerts_by_severity": self.alerts(),
                "latest_alerts": list(self.latest_alerts),
                **dict(zip(("lake_objects", "lake_rows", "lake_bytes"), self.lake(),
                           strict=True)),
                "aggregate_windows": self.total("windows"),
                "open_windows": self.total("open_windows"), "insights": self.total("insights"),
                "silent_sources": self.total("silent_sources"),
                "warnings": self.total("warnings"), "kafka_errors": self.total("kafka_errors"),
                "restart_events": list(self.events)}


def state_of(status: ChildStatus) -> str:
    if status.pid is not None:
        return "up"
    if status.last_event is None:
        return "stopped"
    return "restarting" if status.last_event.restarting else "given up"


class Board:
    """Folds successive scrapes into :class:`View` objects (totals carried across restarts)."""

    def __init__(self, config_line: str) -> None:
        self.config_line = config_line
        self._carried: dict[str, Sample] = {}  # what earlier runs of a child counted
        self._last: dict[str, Sample] = {}  # the child's latest raw scrape
        self._prev: dict[str, tuple[float, Sample]] = {}  # (time, total) of the previous update
        self._runs: dict[str, int] = {}  # the child's restarts when its latest scrape was taken

    def update(self, statuses: Sequence[ChildStatus], samples: Mapping[str, Sample | None],
               events: Sequence[RestartEvent], uptime_s: float,
               latest_alerts: Sequence[str] = ()) -> View:
        rows = tuple(self._row(s, samples.get(s.name), uptime_s) for s in statuses)
        latest = tuple(e.describe() for e in list(events)[-LATEST_EVENTS:])
        return View(uptime_s, self.config_line, rows, latest, tuple(latest_alerts))

    def _row(self, status: ChildStatus, raw: Sample | None, now_s: float) -> Row:
        name = status.name
        last = self._last.get(name)
        if raw is not None:
            # A new process (restarted since the last scrape, or counters gone backwards)
            # starts from 0: keep what the one before it counted.
            if last is not None and (self._runs.get(name, 0) != status.restarts
                                     or raw.consumed + raw.outputs < last.consumed + last.outputs):
                self._carried[name] = self._carried.get(name, Sample()).plus(last)
            self._last[name], self._runs[name] = raw, status.restarts
        current = self._last.get(name, Sample())
        total = current.plus(self._carried[name]) if name in self._carried else current
        in_per_s = out_per_s = 0.0
        if (prev := self._prev.get(name)) is not None and now_s > prev[0]:
            in_per_s = max(0.0, (total.consumed - prev[1].consumed) / (now_s - prev[0]))
            out_per_s = max(0.0, (total.outputs - prev[1].outputs) / (now_s - prev[0]))
        self._prev[name] = (now_s, total)
        return Row(name, state_of(status), status.restarts, total, in_per_s, out_per_s,
                   raw is not None)


_STATE_STYLE = {"up": "green", "restarting": "yellow", "given up": "bold red", "stopped": "dim"}


def alerts_text(view: View) -> str:
    """``12 (critical 2, high 10)``; the alerter may not export severities (then said so)."""
    by_severity = ", ".join(f"{s} {n:,.0f}" for s, n in view.alerts().items())
    return f"{view.total('new_alerts'):,.0f} " + (
        f"({by_severity})" if by_severity else "(by severity: not exported by the alerter)")


def lake_text(view: View) -> str:
    objects, rows, size_bytes = view.lake()
    return (f"lake (archiver): {objects:,.0f} objects, {rows:,.0f} rows, "
            f"{size_bytes / 1e6:,.1f} MB")


def render(view: View) -> Group:
    """The dashboard as a rich renderable, compact enough for an 80x24 terminal (no borders,
    numbers of six characters at most, one line per alert cut at the width)."""
    table = Table(title=f"trailpipe run: up {view.uptime_s:.0f} s", title_justify="left",
                  box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False)
    for column in ("daemon", "state", "restarts", "in/s", "out/s", "consumed", "outputs",
                   "lag", "DLQ"):
        table.add_column(column, justify="left" if column in ("daemon", "state") else "right",
                         no_wrap=True)
    for r in view.rows:
        numbers = tuple(map(count_text, (r.in_per_s, r.out_per_s, r.total.consumed,
                                         r.total.outputs, r.total.lag, r.total.dead_letters))
                        ) if r.has_metrics else ("-",) * 6
        table.add_row(r.name, Text(r.state, style=_STATE_STYLE.get(r.state, "")),
                      str(r.restarts), *numbers)
    lines = [Text(f"alerts: {alerts_text(view)}"),
             *(_one_line(f"  {a}") for a in reversed(view.latest_alerts)),
             Text(f"{lake_text(view)}; aggregates: {view.total('windows'):,.0f} windows "
                  f"closed, {view.total('open_windows'):,.0f} open"),
             Text(f"insights {view.total('insights'):,.0f}; silent sources now "
                  f"{view.total('silent_sources'):,.0f}; warnings {view.total('warnings'):,.0f} "
                  f"(Kafka errors {view.total('kafka_errors'):,.0f}); restarts "
                  f"{sum(r.restarts for r in view.rows) or 'none'}"),
             *(_one_line(f"  latest restart: {e}") for e in view.events[-1:])]
    return Group(Text(view.config, style="dim"), table, *lines)


def count_text(n: float) -> str:
    """``12,345``; from 100,000 on ``123k``, from 10 million ``12.3M`` (six characters up to
    a billion)."""
    if n < 100_000:
        return f"{n:,.0f}"
    return f"{n / 1e3:,.0f}k" if n < 10_000_000 else f"{n / 1e6:,.1f}M"


def _one_line(text: str) -> Text:
    return Text(text, no_wrap=True, overflow="ellipsis")
