"""Which fields a native rule reads: its functions run on a record whose every access is
recorded, for the tests that check a rule's declared ``fields``.

A read is recorded as a canonical dotted path: each key spelled as in the ApiCallEvent schema
(CloudTrail's spelling; a key the schema lacks as in the record, else as asked), a JSON-text
member (``requestParameters``, ...) as its name alone, since the alerter's slim view carries
such a member whole. A ``deep_get``
records its whole path even when a level is missing, so the path is known from any record.

Some reads cannot be served by a slim view built from leaf columns, and are reported as
``whole`` reasons instead: iterating or taking the length of an object (``for k in event``,
``dict(...)``, ``json.dumps``, ``==`` on mappings), ``raw()``, testing whether an *object*
member is present, reading a list-of-objects or map member (``resources``), and reading a
member the alerter never slims (``insightDetails``: ``_WHOLE_ONLY`` in its stage 1). Truthiness of
an object (``if ident:``) is allowed: the rules follow it with reads of declared leaves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from consumers.alerter.match import _WHOLE_ONLY as WHOLE_ONLY
from pipeline.events.plan import FieldPlan, Kind, ObjectPlan, compile_plan
from pipeline.events.schemas import default_registry
from pipeline.rules.native.event import CloudTrailEvent
from pipeline.rules.native.load import NativeRule
from producers.generator.engine import Generator
from producers.generator.scenarios import SCENARIOS

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"

PLAN = compile_plan(default_registry().newest().raw)
"""The ApiCallEvent schema's shape: which members are leaves, objects, JSON text or lists."""

_LEAF = (Kind.STR, Kind.BOOL)
_MISSING = object()


@dataclass
class Trace:
    """What a rule read: ``paths`` (dotted, canonical) and ``whole`` (why a slim view would
    not do; empty when it would)."""

    paths: set[str] = field(default_factory=set)
    whole: set[str] = field(default_factory=set)

    def update(self, other: Trace) -> None:
        self.paths |= other.paths
        self.whole |= other.whole


def _field(plan: ObjectPlan | None, key: str) -> FieldPlan | None:
    """The schema member ``key`` names at this level (exact, else case-insensitive)."""
    if plan is None:
        return None
    found = plan.by_name.get(key)
    if found is None:
        folded = key.casefold()
        found = next((f for f in plan.fields if f.name.casefold() == folded), None)
    return found


def _record_path(trace: Trace, dotted: str, spec: FieldPlan | None) -> None:
    """Note a read of the member at ``dotted`` (not an object): a leaf or JSON-text path, or a
    reason against a slim view when its column form is not its JSON form."""
    if spec is not None and spec.kind in (Kind.OBJECTS, Kind.STRMAP):
        trace.whole.add(f"reads {dotted} ({spec.kind.value})")
    elif dotted.split(".")[0] in WHOLE_ONLY:
        trace.whole.add(f"reads {dotted} (the alerter gives its readers the whole record)")
    else:
        trace.paths.add(dotted)


class TracedEvent(CloudTrailEvent):
    """A :class:`CloudTrailEvent` (or a nested object of one, at ``prefix``) that records
    every read into ``trace``."""

    __slots__ = ("_plan", "_prefix", "_trace")

    def __init__(self, data: Mapping[str, Any], trace: Trace, prefix: str = "",
                 plan: ObjectPlan | None = PLAN) -> None:
        super().__init__(data)
        self._trace, self._prefix, self._plan = trace, prefix, plan

    def _canonical(self, key: str) -> tuple[str, FieldPlan | None]:
        spec = _field(self._plan, key)
        if spec is not None:
            return spec.name, spec
        return self._key(key) or key, None

    def _record(self, name: str, spec: FieldPlan | None) -> None:
        if spec is None or spec.kind is not Kind.OBJECT:
            _record_path(self._trace, self._prefix + name, spec)

    def get(self, key: str, default: Any = None) -> Any:
        name, spec = self._canonical(key)
        self._record(name, spec)
        value = super().get(key, _MISSING)
        if value is _MISSING:
            return default
        if (isinstance(value, CloudTrailEvent) and not isinstance(value, TracedEvent)
                and (spec is None or spec.kind is Kind.OBJECT)):
            # A nested object: traced too, and cached so it is wrapped once.
            value = TracedEvent(value._data, self._trace, f"{self._prefix}{name}.",
                                spec.sub if spec else None)
            self._seen[key] = value
        return value

    def deep_get(self, *keys: str, default: Any = None) -> Any:
        plan, prefix = self._plan, self._prefix
        for key in keys:
            spec = _field(plan, key)
            name = spec.name if spec else key
            if spec is None or spec.kind is not Kind.OBJECT:
                _record_path(self._trace, prefix + name, spec)
                break
            plan, prefix = spec.sub, f"{prefix}{name}."
        return super().deep_get(*keys, default=default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            name, spec = self._canonical(key)
            if spec is not None and spec.kind is Kind.OBJECT:
                self._trace.whole.add(f"tests presence of object {self._prefix}{name}")
            else:
                self._record(name, spec)
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self._trace.whole.add(f"iterates {self._prefix.rstrip('.') or 'the event'}")
        return super().__iter__()

    def __len__(self) -> int:
        self._trace.whole.add(f"len of {self._prefix.rstrip('.') or 'the event'}")
        return super().__len__()

    def __bool__(self) -> bool:
        return bool(self._data)

    def raw(self) -> Mapping[str, Any]:
        self._trace.whole.add(f"raw() of {self._prefix.rstrip('.') or 'the event'}")
        return super().raw()


def trace(rule: NativeRule, record: Mapping[str, Any]) -> tuple[Trace, bool]:
    """Run ``rule`` on ``record`` as the alerter does (``matches``, then ``describe`` when it
    matches) and return what it read and whether it matched. Whatever the rule raises
    propagates."""
    seen = Trace()
    event = TracedEvent(record, seen)
    matched = rule.matches(event)
    if matched:
        rule.describe(event)
    return seen, matched


@cache
def shared_records() -> tuple[dict[str, Any], ...]:
    """Every corpus CloudTrail record and 20,000 generated events holding every scenario."""
    found: list[dict[str, Any]] = []
    for path in sorted((CORPUS / "cloudtrail").glob("*/records.jsonl")):
        with path.open(encoding="utf-8") as lines:
            found.extend(json.loads(line) for line in lines if line.strip())
    generator = Generator(3, 4, 3, start_ms=1_764_000_000_000, scenarios=list(SCENARIOS),
                          scenario_every=2_000)
    found.extend(generator.records(20_000))
    return tuple(found)


JSON_TEXT = ("requestParameters", "responseElements", "additionalEventData", "serviceEventDetails")


def json_text_variants(record: dict[str, Any]) -> list[dict[str, Any]]:
    """For each JSON-text member ``record`` holds as an object, a copy with it null and one
    with it as JSON text (as some sources send it): the forms a slim view must also serve."""
    found = []
    for name in JSON_TEXT:
        if isinstance(record.get(name), dict):
            found.append({**record, name: None})
            found.append({**record, name: json.dumps(record[name])})
    return found


def all_records(rules: Iterable[NativeRule]) -> list[dict[str, Any]]:
    """The records a rule's fields are traced and checked on: :func:`shared_records`, and the
    :func:`own_records` of every rule with their :func:`json_text_variants`."""
    found = list(shared_records())
    for rule in rules:
        own = own_records(rule)
        found.extend(own)
        for record in own:
            found.extend(json_text_variants(record))
    return found


def own_records(rule: NativeRule) -> list[dict[str, Any]]:
    """The rule's own test logs and those of the Panther rules it names."""
    found = [dict(test.log) for test in rule.spec.tests]
    for panther_id in rule.spec.panther:
        data = json.loads((CORPUS / "panther" / "rules" / f"{panther_id}.json")
                          .read_text(encoding="utf-8"))
        found.extend(test["log"] for test in data["tests"])
    return found
