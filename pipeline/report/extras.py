"""What the lake does not hold: alerts and insights, for the report's window.

* **Alerts** come from a JSON-lines file (``--alerts FILE``): one Alert object a line, as
  ``trailpipe replay --alerts-out`` writes them (``schemas/Alert.v1.avsc``'s fields), or from
  the alerts topic read to its end with no consumer group (:func:`read_alerts`; as far back as
  its retention keeps them: the lake keeps no alerts, so a report of an old window is made
  from a hunt's file). An alert is counted once: of the records with the same ``alert_id`` (an
  alert and its updates) the one with the highest ``update``, then the latest ``created_ms``,
  wins. Its time is ``first_seen_ms`` (else ``window_start_ms``).
* **Insights** come from the insights topic, read to its end with no consumer group (as
  ``trailpipe insights list`` reads it) and paired by ``sharedEventID``
  (:func:`pipeline.aggregates.insights.pair_insights`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from pipeline.aggregates.insights import Insight
from pipeline.report.window import Window

SEVERITIES = ("critical", "high", "medium", "low", "info", "informational")
"""Display order; a severity not listed sorts after these."""


class AlertsFileError(ValueError):
    """The alerts file cannot be read or a line is not an alert object."""


def alert_time_ms(alert: Mapping[str, Any]) -> int | None:
    value = alert.get("first_seen_ms", alert.get("window_start_ms"))
    return value if isinstance(value, int) else None


def load_alerts(path: Path) -> list[dict[str, Any]]:
    """The alerts of a JSON-lines file, one per ``alert_id`` (see the module contract).
    Raises AlertsFileError naming the line that is not a JSON object with an ``alert_id``."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise AlertsFileError(f"cannot read {path}: {exc}") from exc
    alerts = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            alert = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise AlertsFileError(f"{path}:{number}: not JSON: {exc}") from exc
        if not isinstance(alert, dict) or not isinstance(alert.get("alert_id"), str):
            raise AlertsFileError(f"{path}:{number}: not an alert (no alert_id)")
        alerts.append(alert)
    return newest_per_alert(alerts)


def newest_per_alert(alerts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per ``alert_id``: the highest ``update``, then the latest ``created_ms``
    (of equals, the later one)."""
    latest: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        kept = latest.get(alert["alert_id"])
        if kept is None or _rank(alert) >= _rank(kept):
            latest[alert["alert_id"]] = alert
    return list(latest.values())


def read_alerts(base_conf: Mapping[str, Any], topic: str) -> tuple[list[dict[str, Any]], int]:
    """The alerts on ``topic`` (read to its end, no group), one per ``alert_id``, and the
    count of records that are not Alerts. Raises
    :class:`pipeline.aggregates.source.SourceError`."""
    from pipeline.rules.alert import AlertDecodeError, decode_alert

    alerts, bad = _decoded(base_conf, topic, decode_alert, AlertDecodeError)
    return newest_per_alert(alerts), bad


def _decoded(base_conf: Mapping[str, Any], topic: str, decode: Callable[[bytes], Any],
             error: type[Exception]) -> tuple[list[Any], int]:
    """``decode`` of every record on ``topic`` (read to its end, no group), and how many
    raised ``error`` (skipped)."""
    from pipeline.aggregates.source import read_to_end

    datums, bad = [], 0
    for msg in read_to_end(base_conf, topic):
        try:
            datums.append(decode(msg.value() or b""))
        except error:
            bad += 1
    return datums, bad


def _rank(alert: Mapping[str, Any]) -> tuple[int, int]:
    return int(alert.get("update") or 0), int(alert.get("created_ms") or 0)


def alerts_in(alerts: Iterable[Mapping[str, Any]], window: Window) -> list[Mapping[str, Any]]:
    return [a for a in alerts if window.contains(alert_time_ms(a), a.get("account"))]


def severity_order(severity: str) -> tuple[int, str]:
    return (SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES), severity)


def alerts_over_time(alerts: Sequence[Mapping[str, Any]], bucket_ms: int
                     ) -> list[dict[str, Any]]:
    """Alerts per (bucket_ms, severity), ordered by bucket then severity."""
    counts = Counter((t - t % bucket_ms, str(a.get("severity") or "unknown"))
                     for a in alerts if (t := alert_time_ms(a)) is not None)
    keys = sorted(counts, key=lambda k: (k[0], severity_order(k[1])))
    return [{"bucket_ms": b, "severity": s, "alerts": counts[(b, s)]} for b, s in keys]


def alerts_by_rule(alerts: Sequence[Mapping[str, Any]], top: int) -> list[dict[str, Any]]:
    """Top (rule_id, severity): alerts, the title of one of them, matched events summed."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for alert in alerts:
        key = (str(alert.get("rule_id") or "unknown"), str(alert.get("severity") or "unknown"))
        groups.setdefault(key, []).append(alert)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:top]
    return [{"rule_id": rule, "severity": severity, "alerts": len(group),
             "events": sum(int(a.get("count") or 0) for a in group),
             "title": str(min(str(a.get("title") or "") for a in group))}
            for (rule, severity), group in ordered]


def insights_in(insights: Iterable[Insight], window: Window) -> list[Insight]:
    """The insights whose span meets the window (an open one runs on), of its account."""
    return sorted((i for i in insights if i.overlaps(window.start_ms, window.end_ms)
                   and (window.account is None or i.account == window.account)),
                  key=lambda i: (i.start_ms or i.end_ms or 0, i.shared_event_id))


def read_insights(base_conf: Mapping[str, Any], topic: str) -> tuple[list[Insight], int]:
    """The insights on ``topic`` (read to its end, no group) and the count of undecodable
    records skipped. Raises :class:`pipeline.aggregates.source.SourceError`."""
    from pipeline.aggregates.insights import pair_insights
    from pipeline.events.errors import WireFormatError
    from pipeline.events.wire import decode

    datums, bad = _decoded(base_conf, topic, decode, WireFormatError)
    return pair_insights(datums), bad
