"""Every metric name trailpipe exports, in one place (the Grafana dashboard and its test use
these). Prometheus conventions: counters end in ``_total``, units are in the name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PREFIX = "trailpipe_"

CONSUMED = "trailpipe_records_consumed_total"
PROCESSED = "trailpipe_records_processed_total"
OUTPUTS = "trailpipe_outputs_total"
DEAD_LETTERS = "trailpipe_dead_letters_total"
FLUSH_SECONDS = "trailpipe_flush_seconds"
FLUSH_FAILURES = "trailpipe_flush_failures_total"
COMMITS = "trailpipe_commits_total"
REWINDS = "trailpipe_rewinds_total"
LAG = "trailpipe_consumer_lag_records"
ASSIGNED = "trailpipe_assigned_partitions"
PRODUCED = "trailpipe_records_produced_total"
READ = "trailpipe_records_read_total"  # the producers' (pipeline.metrics.producer)
READ_BYTES = "trailpipe_read_bytes_total"
PRODUCED_BYTES = "trailpipe_produced_bytes_total"
PENDING = "trailpipe_producer_pending_records"
DELIVERY_ERRORS = "trailpipe_producer_delivery_errors_total"
KAFKA_ERRORS = "trailpipe_kafka_errors_total"
ALERTS = "trailpipe_alerts_total"  # labelled {severity,rule}: see LABELLED
LOG_WARNINGS = "trailpipe_log_warnings_total"  # lines logged at warning or worse

Kind = Literal["counter", "gauge"]


@dataclass(frozen=True, slots=True)
class Extra:
    """A daemon's own summary counter exported as a metric ({daemon} label only)."""

    name: str
    kind: Kind
    help: str


_LAKE_OBJECTS = Extra("trailpipe_lake_objects_total", "counter", "Objects written to the lake.")
_LAKE_ROWS = Extra("trailpipe_lake_rows_total", "counter", "Rows written to the lake.")

_LAKE_BYTES = Extra("trailpipe_lake_bytes_total", "counter",
                    "Parquet bytes written to the lake (each put, retries included).")

EXTRAS: dict[str, dict[str, Extra]] = {
    # lake objects and bytes count every put (a retried flush puts its objects again)
    "archiver": {"objects_written": _LAKE_OBJECTS, "rows_written": _LAKE_ROWS,
                 "bytes_written": _LAKE_BYTES},
    "aggregator": {
        "lake_objects": _LAKE_OBJECTS, "lake_rows": _LAKE_ROWS, "lake_bytes": _LAKE_BYTES,
        "windows": Extra("trailpipe_aggregate_windows_total", "counter", "Windows emitted."),
        "insights": Extra("trailpipe_insights_total", "counter", "Insights emitted."),
        "late_events": Extra("trailpipe_late_events_total", "counter",
                             "Events later than the grace period."),
        "open_windows": Extra("trailpipe_open_windows", "gauge", "Windows still open."),
        "silent_sources": Extra("trailpipe_silent_sources", "gauge", "Sources gone silent."),
    },
    "alerter": {
        "hits": Extra("trailpipe_rule_hits_total", "counter", "Rule matches."),
        "alerts": Extra("trailpipe_alerter_alerts_total", "counter", "New alerts emitted."),
        "updates": Extra("trailpipe_alerter_alert_updates_total", "counter",
                         "Updates of open alerts emitted."),
        "suppressed": Extra("trailpipe_alerter_suppressed_total", "counter",
                            "Alerts of rules that only feed correlations."),
        "rule_errors": Extra("trailpipe_rule_errors_total", "counter",
                             "Rule evaluation errors."),
    },
    "mirror": {
        "mirrored": Extra("trailpipe_mirror_records_total", "counter", "Events mirrored as JSON."),
        "alerts_mirrored": Extra("trailpipe_mirror_alerts_total", "counter",
                                 "Alerts mirrored as JSON."),
    },
    "digester": {"digests_written": Extra("trailpipe_digests_total", "counter",
                                          "Signed digests written.")},
}
"""Per daemon: summary key → metric. Only keys the daemon's summary already counts."""

LABELLED: dict[str, tuple[tuple[str, ...], str]] = {
    ALERTS: (("severity", "rule"), "Alerts emitted, by severity and rule."),
}
"""Counters with labels of their own (besides ``daemon``): a daemon's processor or sink
exports them from an optional ``labelled_counts() -> {name: {label values: count}}`` (the
values in the order given here). Names not listed here are not exported."""

LAKE_DAEMONS = frozenset({"archiver", "digester", "aggregator"})
"""Daemons that write the lake: /readyz also probes it."""


def all_names() -> frozenset[str]:
    """Every metric name a daemon or producer can export (histograms: their base name)."""
    core = {CONSUMED, PROCESSED, OUTPUTS, DEAD_LETTERS, FLUSH_SECONDS, FLUSH_FAILURES, COMMITS,
            REWINDS, LAG, ASSIGNED, DELIVERY_ERRORS, KAFKA_ERRORS,
            PRODUCED, READ, READ_BYTES, PRODUCED_BYTES, PENDING, LOG_WARNINGS}
    extras = {e.name for extras in EXTRAS.values() for e in extras.values()}
    return frozenset(core | extras | set(LABELLED))
