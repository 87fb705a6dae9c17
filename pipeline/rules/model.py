"""Shapes shared by the rule engines, the alerter and ``trailpipe rules``.

An *event* handed to a rule is a CloudTrail record as JSON (a ``dict``), exactly as
``events encode`` takes it; field names are CloudTrail's (case-sensitive for Sigma). A
single-event rule (:class:`Rule`) says whether one event matches; a correlation
(:class:`CorrelationSpec`) combines the matches of other rules over event time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

SEVERITIES = ("info", "low", "medium", "high", "critical")
"""Severity levels, lowest first. Sigma ``informational`` maps to ``info``."""

HOUR_MS = 3_600_000
ANY_VALUE = "*"
"""An index value meaning "any non-null value" (a rule that needs the field present)."""

CorrelationKind = Literal["event_count", "value_count", "temporal", "temporal_ordered"]


class RuleError(Exception):
    """A rule file that cannot be loaded or compiled (the message names the file and why)."""


@dataclass(frozen=True, slots=True)
class RuleMeta:
    """What every rule declares.

    ``index`` maps one CloudTrail field (``eventName``, ``userIdentity.type``, ...) to the
    casefolded values one of which an event must have for the rule to possibly match
    (:data:`ANY_VALUE`: any non-null value); ``None`` means the rule must see every event.
    ``source`` says where the rule came from: ``sigma:<path>`` or
    ``native:<module>@<version>``.
    """

    id: str
    title: str
    severity: str
    source: str
    tags: tuple[str, ...] = ()
    threshold: int = 1
    dedup_period_ms: int = HOUR_MS
    index: Mapping[str, frozenset[str]] | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Detail:
    """How one match is reported: the alert title, the dedup key (matches with the same key
    within the dedup period make one alert), the severity and free-form context."""

    title: str
    dedup_key: str
    severity: str
    context: Mapping[str, str] = field(default_factory=dict)


class Rule(Protocol):
    """A single-event detection. ``matches`` and ``describe`` may raise; the caller counts
    and reports the error and goes on with the other rules."""

    @property
    def meta(self) -> RuleMeta: ...

    def matches(self, event: Mapping[str, Any]) -> bool: ...

    def describe(self, event: Mapping[str, Any]) -> Detail: ...


@dataclass(frozen=True, slots=True)
class CorrelationSpec:
    """A Sigma v2.1 correlation rule, resolved.

    ``rules`` are the ids of the referenced rules (names resolved to ids). ``group_by`` are
    field names as written; for each referenced rule id, ``fields[rule_id][name]`` is the
    CloudTrail field path that name reads (aliases resolved; a name without an alias reads
    the field of that name). ``condition`` holds one or more of ``gt gte lt lte eq neq``
    (several make a range); ``value_field`` is the field ``value_count`` counts distinct
    values of. ``generate``: the referenced rules also alert on their own.
    """

    meta: RuleMeta
    kind: CorrelationKind
    rules: tuple[str, ...]
    group_by: tuple[str, ...]
    fields: Mapping[str, Mapping[str, str]]
    timespan_ms: int
    condition: Mapping[str, int]
    value_field: str | None = None
    generate: bool = False


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule match routed to the stateful stage (threshold/dedup or a correlation).

    ``target`` is the rule id (``kind`` "rule") or the correlation id (``kind``
    "correlation"); ``key`` is the dedup key or the group key (group-by values joined with
    ``\\x1f``); ``rule_id`` is the single-event rule that matched. Times are event time, ms.
    ``value`` is the ``value_count`` field's value. ``produced_ms`` is the event's Kafka
    timestamp (end-to-end latency is measured from it).
    """

    kind: Literal["rule", "correlation"]
    target: str
    key: str
    rule_id: str
    event_time_ms: int
    event_id: str
    account: str = ""
    region: str = ""
    principal: str = ""
    source_ip: str = ""
    value: str | None = None
    title: str = ""
    severity: str = "info"
    context: Mapping[str, str] = field(default_factory=dict)
    produced_ms: int = 0
    count: int = 1
    """Matches this hit stands for (stage 1 may aggregate a batch's matches of one dedup
    window into one hit; ``kind`` "rule" only). ``event_time_ms`` is then the earliest."""
    last_time_ms: int | None = None
    """The latest event time among them (None: ``event_time_ms``)."""
    more_ids: tuple[str, ...] = ()
    """eventIDs of further matches after ``event_id``, in order (a bounded sample)."""


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """An alert (or an update of one) as the stateful stage produces it; the alerter turns it
    into the Avro ``Alert`` record. ``update`` is 0 for the alert's opening and counts the
    updates after it. ``alert_id`` is deterministic: from the rule id, key and window start."""

    alert_id: str
    update: int
    kind: Literal["rule", "correlation"]
    rule_id: str
    key: str
    window_start_ms: int
    count: int
    first_seen_ms: int
    last_seen_ms: int
    sample_event_ids: tuple[str, ...]
    title: str
    severity: str
    account: str = ""
    region: str = ""
    principal: str = ""
    source_ip: str = ""
    context: Mapping[str, str] = field(default_factory=dict)
    rule_ids: tuple[str, ...] = ()
    """For a correlation: the single-event rules whose matches made it."""
