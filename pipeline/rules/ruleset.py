"""The rules that run: Sigma and native rules and Sigma correlations, loaded once, indexed, and
routed to the stateful stage.

Stage 1 (:meth:`RuleSet.hits`) tests one event against the rules its indexed fields can reach
and turns every match into :class:`~pipeline.rules.model.Hit` s: one for the rule's own
threshold/dedup window when the rule alerts on its own, and one per correlation that references
it (keyed by the correlation's group-by values). Sigma's ``generate`` decides "on its own": a
rule referenced by correlations alerts on its own only if one of them says ``generate: true``.
A rule that raises is counted per rule id (``errors``); the other rules still run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.events.mapping import parse_event_time
from pipeline.logs import get_logger
from pipeline.rules.config import AlerterConfig
from pipeline.rules.model import ANY_VALUE, AlertDraft, CorrelationSpec, Hit, Rule, RuleMeta
from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.load import PACK_DIR, NativeLoad, load_native
from pipeline.rules.sigma.loader import SigmaLoad, load_sigma

log = get_logger("pipeline.rules")

SIGMA_PACK_DIR = PACK_DIR.parent / "sigma"
KEY_SEP = "\x1f"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a match of one rule goes: a correlation, with the field paths of its group-by
    names (and of the counted field) for that rule."""

    correlation: str
    group_paths: tuple[str, ...]
    value_path: str | None


def field_value(event: CloudTrailEvent, path: str) -> Any:
    """The value at a dotted CloudTrail path (``userIdentity.arn``), or None."""
    return event.deep_get(*path.split("."))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass(slots=True)
class RuleSet:
    """Loaded rules and correlations (by id) and the problems met while loading them."""

    rules: dict[str, Rule]
    correlations: dict[str, CorrelationSpec]
    problems: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    _index: dict[str, dict[str, list[Rule]]] = field(default_factory=dict)
    _always: list[Rule] = field(default_factory=list)
    _routes: dict[str, list[Route]] = field(default_factory=dict)
    _alone: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for rule in self.rules.values():
            index = rule.meta.index
            if not index:
                self._always.append(rule)
                continue
            path, values = next(iter(index.items()))  # one indexed field suffices
            for value in values:
                self._index.setdefault(path, {}).setdefault(value, []).append(rule)
        self._route()

    def _route(self) -> None:
        generating: set[str] = set()
        referenced: set[str] = set()
        for spec in self.correlations.values():
            for rule_id in spec.rules:
                referenced.add(rule_id)
                if spec.generate:
                    generating.add(rule_id)
                names = spec.fields.get(rule_id, {})
                value_path = (names.get(spec.value_field, spec.value_field)
                              if spec.value_field else None)
                self._routes.setdefault(rule_id, []).append(Route(
                    spec.meta.id, tuple(names.get(n, n) for n in spec.group_by), value_path))
        ids = [*self.rules, *self.correlations]
        self._alone = {rid for rid in ids if rid not in referenced or rid in generating}

    def alerts_alone(self, target: str) -> bool:
        """Whether a rule's or correlation's own alerts are published (Sigma ``generate``:
        a rule or correlation referenced by correlations only feeds them, unless one of them
        says ``generate: true``)."""
        return target in self._alone

    @property
    def index_paths(self) -> tuple[str, ...]:
        """The fields rules are indexed by (stage 1 reads just these to pick candidates)."""
        return tuple(self._index)

    @property
    def unindexed(self) -> tuple[str, ...]:
        """Ids of rules that must see every event."""
        return tuple(r.meta.id for r in self._always)

    def meta(self, target: str) -> RuleMeta:
        """The metadata of a rule or a correlation."""
        rule = self.rules.get(target)
        return rule.meta if rule is not None else self.correlations[target].meta

    def feeds(self, rule_id: str) -> bool:
        """Whether matches of ``rule_id`` feed any correlation."""
        return bool(self._routes.get(rule_id))

    def route_paths(self, rule_id: str) -> tuple[str, ...]:
        """The event fields the correlations fed by ``rule_id`` read (group-by, counted)."""
        return tuple(p for r in self._routes.get(rule_id, ())
                     for p in (*r.group_paths, *([r.value_path] if r.value_path else [])))

    @property
    def always(self) -> tuple[Rule, ...]:
        """The rules that must see every event."""
        return tuple(self._always)

    def candidates(self, indexed: Mapping[str, Any], *, always: bool = True) -> list[Rule]:
        """Rules an event with these index-field values can match (plus, with ``always``, the
        unindexed rules)."""
        out = list(self._always) if always else []
        for path, table in self._index.items():
            value = indexed.get(path)
            if value is not None:
                out.extend(table.get(str(value).casefold(), ()))
                out.extend(table.get(ANY_VALUE, ()))
        return out

    def hits(self, record: Mapping[str, Any], *, produced_ms: int = 0,
             rules: Sequence[Rule] | None = None, skip: Collection[str] = ()) -> list[Hit]:
        """Every Hit ``record`` (CloudTrail JSON) makes; ``rules`` defaults to its candidates
        (but those in ``skip``)."""
        event = CloudTrailEvent(record)
        if rules is None:
            rules = [r for r in self.candidates({p: field_value(event, p) for p in self._index})
                     if r.meta.id not in skip]
        out: list[Hit] = []
        for rule in rules:
            try:
                if rule.matches(record):
                    out.extend(self._hits_of(rule, record, event, produced_ms))
            except Exception as exc:  # one failing rule never stops the others
                self.errors[rule.meta.id] += 1
                log.warning("rule_failed", rule_id=rule.meta.id, error=str(exc),
                            error_type=type(exc).__name__, event_id=record.get("eventID"))
        return out

    def _hits_of(self, rule: Rule, record: Mapping[str, Any], event: CloudTrailEvent,
                 produced_ms: int) -> list[Hit]:
        rid = rule.meta.id
        time_ms, _ = parse_event_time(dict(record))
        base = Hit(kind="rule", target=rid, key="", rule_id=rid,
                   event_time_ms=time_ms if time_ms is not None else produced_ms,
                   event_id=_text(event.get("eventID")),
                   account=_text(event.get("recipientAccountId")
                                 or event.deep_get("userIdentity", "accountId")),
                   region=_text(event.get("awsRegion")),
                   principal=_text(event.deep_get("userIdentity", "arn")
                                   or event.deep_get("userIdentity", "principalId")),
                   source_ip=_text(event.get("sourceIPAddress")), produced_ms=produced_ms)
        out: list[Hit] = []
        if rid in self._alone:
            detail = rule.describe(record)
            out.append(replace(base, key=detail.dedup_key, title=detail.title,
                               severity=detail.severity, context=dict(detail.context)))
        for route in self._routes.get(rid, ()):
            key = KEY_SEP.join(_text(field_value(event, p)) for p in route.group_paths)
            value = (_text(field_value(event, route.value_path))
                     if route.value_path else None)
            spec = self.correlations[route.correlation].meta
            out.append(replace(base, kind="correlation", target=route.correlation, key=key,
                               value=value, title=spec.title, severity=spec.severity))
        return out

    def chained(self, draft: AlertDraft) -> list[Hit]:
        """Hits a fired correlation makes for the correlations that reference it (its group
        values carried over by name)."""
        if draft.kind != "correlation":
            return []
        inner = self.correlations[draft.rule_id]
        values = dict(zip(inner.group_by, draft.key.split(KEY_SEP), strict=False))
        out = []
        for route in self._routes.get(draft.rule_id, ()):
            key = KEY_SEP.join(values.get(p, "") for p in route.group_paths)
            spec = self.correlations[route.correlation].meta
            out.append(Hit(kind="correlation", target=route.correlation, key=key,
                           rule_id=draft.rule_id, event_time_ms=draft.last_seen_ms,
                           event_id=draft.sample_event_ids[-1] if draft.sample_event_ids else "",
                           account=draft.account, region=draft.region,
                           principal=draft.principal, source_ip=draft.source_ip,
                           title=spec.title, severity=spec.severity))
        return out


def rule_dirs(cfg: AlerterConfig) -> tuple[list[Path], list[Path]]:
    """(Sigma paths, native rule dirs) the config selects, the default pack first."""
    sigma = ([SIGMA_PACK_DIR] if cfg.default_pack else []) + list(cfg.sigma_paths)
    native = ([PACK_DIR] if cfg.default_pack else []) + list(cfg.native_paths)
    return sigma, native


def merge_loads(sigma: SigmaLoad, native: NativeLoad, disabled: Iterable[str]) -> RuleSet:
    """One RuleSet from what the two loaders found: a duplicate id across them is a problem
    (the first loaded wins), ``disabled`` ids are left out."""
    off = set(disabled)
    problems = [*sigma.problems, *native.problems]
    rules: dict[str, Rule] = {}
    loaded: list[Rule] = [*sigma.rules, *native.rules]
    for rule in loaded:
        if rule.meta.id in rules:
            problems.append(f"duplicate rule id {rule.meta.id!r} ({rule.meta.source} and "
                            f"{rules[rule.meta.id].meta.source})")
        elif rule.meta.id not in off:
            rules[rule.meta.id] = rule
    correlations = {c.meta.id: c for c in sigma.correlations if c.meta.id not in off}
    return RuleSet(rules, correlations, problems)


def load_ruleset(cfg: AlerterConfig, *, sigma_paths: Iterable[Path] = (),
                 native_paths: Iterable[Path] = ()) -> RuleSet:
    """Load the rules ``cfg`` selects plus the given extra paths; disabled ids left out.
    Problems are collected, never raised: the caller decides whether they are fatal."""
    sigma, native = rule_dirs(cfg)
    return merge_loads(load_sigma([*sigma, *sigma_paths]),
                       load_native([*native, *native_paths]), cfg.disabled)
