"""``rules lint`` for Sigma: what loads but cannot work as written.

Known fields are the CloudTrail record fields modelled in ``ApiCallEvent.v1_1.avsc``
(our own additions ``ingest``, ``labels``, ``eventTimeMs``, ``eventTimeStatus`` and
``unmodelled`` are not CloudTrail's); everything under the JSON members (``requestParameters``
...), maps and ``userIdentity`` is open-ended. A path into a scalar can never match.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from pipeline.events.schemas import SCHEMA_DIR
from pipeline.rules.sigma.access import JSON_TEXT_MEMBERS
from pipeline.rules.sigma.compile import INDEX_FIELDS, required_values
from pipeline.rules.sigma.loader import SigmaLoad

_SCHEMA_FILE = "ApiCallEvent.v1_1.avsc"
_NOT_CLOUDTRAIL = frozenset({"ingest", "labels", "eventTimeMs", "eventTimeStatus",
                             "unmodelled"})
_OPEN_ENDED = frozenset({*JSON_TEXT_MEMBERS, "userIdentity"})
OPEN, SCALAR = "open", "scalar"
FieldTree = dict[str, Any]
"""Field name -> OPEN, SCALAR or the FieldTree of a nested record."""


def _shape(avro_type: Any) -> Any:
    if isinstance(avro_type, list):
        non_null = [t for t in avro_type if t != "null"]
        return _shape(non_null[0]) if len(non_null) == 1 else OPEN
    if isinstance(avro_type, dict):
        kind = avro_type.get("type")
        if kind == "record":
            return {f["name"]: _shape(f["type"]) for f in avro_type["fields"]}
        if kind == "array":
            return _shape(avro_type["items"])
        if kind == "map":
            return OPEN
    return SCALAR


@lru_cache(maxsize=1)
def cloudtrail_fields() -> FieldTree:
    """The known CloudTrail field tree (read from the schema once)."""
    schema = json.loads((SCHEMA_DIR / _SCHEMA_FILE).read_text(encoding="utf-8"))
    tree: FieldTree = {}
    for field in schema["fields"]:
        name = field["name"]
        if name not in _NOT_CLOUDTRAIL:
            tree[name] = OPEN if name in _OPEN_ENDED else _shape(field["type"])
    return tree


def check_field(path: str) -> str | None:
    """Why ``path`` cannot name a CloudTrail field, or None when it can."""
    segments = path.split(".")
    node: Any = cloudtrail_fields()
    for depth, segment in enumerate(segments):
        if node == OPEN:
            return None
        if node == SCALAR:
            scalar = ".".join(segments[:depth])
            return f"field {path} walks into {scalar}, a scalar: it can never match"
        child = node.get(segment)
        if child is None:
            near = {k.casefold(): k for k in node}.get(segment.casefold())
            if near is not None:
                return (f"field {path}: {segment!r} differs only by case from CloudTrail's "
                        f"{near!r} (field names are case-sensitive)")
            return f"field {path} is not a CloudTrail field"
        node = child
    return None


def lint_sigma(load: SigmaLoad) -> list[str]:
    """Every problem of ``load``: its load problems (unsupported modifiers, unresolved
    references ...), then fields that are not CloudTrail's or cannot be reached, and rules
    whose condition contradicts itself on ``eventName``/``eventSource``."""
    problems = list(load.problems)
    for rule in load.rules:
        where = f"{rule.meta.source}: {rule.meta.title}"
        problems.extend(f"{where}: {p}" for p in map(check_field, rule.fields) if p)
        for field in INDEX_FIELDS:
            bounds = [required_values(c, field) for c in rule.conditions]
            if all(b is not None for b in bounds) and not frozenset().union(*bounds):  # type: ignore[arg-type]
                problems.append(f"{where}: can never match: the condition requires "
                                f"contradictory {field} values")
    for spec in load.correlations:
        where = f"{spec.meta.source}: {spec.meta.title}"
        paths = {path for names in spec.fields.values() for path in names.values()}
        problems.extend(f"{where}: {p}" for p in map(check_field, sorted(paths)) if p)
    return problems
