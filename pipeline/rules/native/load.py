"""Loading native rules: ``<name>.py`` (the logic) beside ``<name>.yml`` (the metadata and
tests).

The module must define ``detect(event) -> bool``; it may define ``title``, ``dedup``,
``severity`` and ``alert_context`` (each taking the event). The event is a
:class:`~pipeline.rules.native.event.CloudTrailEvent`. The metadata file is validated
strictly (unknown keys are errors). Loading never raises for a bad rule: every problem
(bad YAML, unknown key, a module that fails to import or lacks ``detect``, a duplicate id,
a ``.py`` without its ``.yml`` or the reverse) is listed with its file and the rule is left
out; the good rules load.

Modules are imported by file path, so a rule directory need not be a package. A ``.py``
whose name starts with ``_`` is not a rule (a package marker or a helper the rules share).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.rules.model import ANY_VALUE, SEVERITIES, Detail, RuleError, RuleMeta
from pipeline.rules.native.event import CloudTrailEvent

PACK_DIR = Path(__file__).resolve().parent.parent / "pack" / "native"
"""The default pack's native rules."""

_OPTIONAL = ("title", "dedup", "severity", "alert_context")
_CONTEXT_FIELDS = ("eventName", "eventSource", "awsRegion", "sourceIPAddress")

Severity = Literal["info", "low", "medium", "high", "critical"]

_last_view: tuple[Mapping[str, Any] | None, CloudTrailEvent | None] = (None, None)


def view_of(event: Mapping[str, Any]) -> CloudTrailEvent:
    """``event`` as a :class:`CloudTrailEvent`. The alerter hands one record to every
    candidate rule in turn, so the view of the last record is reused: each member is then
    converted once for all rules, not once per rule. (The tuple is read and replaced whole,
    so concurrent callers at worst build an extra view.)"""
    global _last_view
    if isinstance(event, CloudTrailEvent):
        return event
    raw, view = _last_view
    if raw is event and view is not None:
        return view
    view = CloudTrailEvent(event)
    _last_view = (event, view)
    return view


class RuleTest(BaseModel):
    """One labelled example: a CloudTrail record and whether the rule must match it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    expected: bool
    log: dict[str, Any]


class RuleFile(BaseModel):
    """The ``<name>.yml`` metadata of a native rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    title: str = Field(min_length=1)
    severity: Severity
    version: int = Field(ge=1)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    threshold: int = Field(default=1, ge=1)
    dedup_period_minutes: int = Field(default=60, ge=1)
    event_names: list[str] | None = Field(default=None, min_length=1)
    index: dict[str, list[str]] | None = Field(default=None, description=(
        "instead of event_names: one dotted field and the values one of which it must have "
        "(\"*\" = any non-null value) for the rule to possibly match"))
    fields: list[str] | None = Field(default=None, min_length=1, description=(
        "the dotted fields detect() and the optional functions read; when given, the "
        "alerter may evaluate the rule on a record holding just these (the pack tests check "
        "the list)"))
    enabled: bool = True
    panther: list[str] = Field(default_factory=list)
    tests: list[RuleTest] = Field(default_factory=list)


class NativeRule:
    """A loaded native rule; implements :class:`pipeline.rules.model.Rule`.

    :meth:`matches` honours the ``event_names`` index itself, so a rule tested directly gives
    the verdict the alerter (which routes by the index) would give.
    """

    def __init__(self, meta: RuleMeta, spec: RuleFile, module: ModuleType, path: Path) -> None:
        self._meta = meta
        self.spec = spec
        self.path = path
        self._detect: Callable[[CloudTrailEvent], Any] = module.detect
        self._fns: dict[str, Callable[[CloudTrailEvent], Any]] = {
            name: getattr(module, name) for name in _OPTIONAL
            if callable(getattr(module, name, None))}
        self._index = next(iter(meta.index.items())) if meta.index else None
        self.fields: tuple[str, ...] | None = tuple(spec.fields) if spec.fields else None

    @property
    def meta(self) -> RuleMeta:
        return self._meta

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` matches; raises whatever ``detect`` raises."""
        view = view_of(event)
        if self._index is not None:
            path, values = self._index
            value = view.deep_get(*path.split("."))
            if value is None or (ANY_VALUE not in values
                                 and str(value).casefold() not in values):
                return False
        return bool(self._detect(view))

    def describe(self, event: Mapping[str, Any]) -> Detail:
        """The alert title, dedup key, severity and context for a matching ``event``.

        Raises :class:`RuleError` when ``severity`` returns an unknown level, and whatever the
        rule's functions raise."""
        view = view_of(event)
        fns = self._fns
        title = str(fns["title"](view)) if "title" in fns else self._meta.title
        key = str(fns["dedup"](view)) if "dedup" in fns else default_dedup(view)
        severity = str(fns["severity"](view)).lower() if "severity" in fns else self._meta.severity
        if severity not in SEVERITIES:
            raise RuleError(f"{self.path}: severity() returned {severity!r}")
        raw = fns["alert_context"](view) if "alert_context" in fns else default_context(view)
        context = {str(k): "" if v is None else str(v) for k, v in raw.items()}
        return Detail(title=title, dedup_key=key, severity=severity, context=context)


def default_dedup(event: CloudTrailEvent) -> str:
    """``<recipientAccountId>|<userIdentity.arn or principalId>``."""
    who = event.deep_get("userIdentity", "arn") or event.deep_get("userIdentity", "principalId")
    return f"{event.get('recipientAccountId') or ''}|{who or ''}"


def default_context(event: CloudTrailEvent) -> dict[str, str]:
    """eventName, eventSource, awsRegion and sourceIPAddress, those present."""
    return {name: str(event[name]) for name in _CONTEXT_FIELDS if event.get(name) is not None}


@dataclass(frozen=True, slots=True)
class NativeLoad:
    """The outcome of loading: enabled rules, disabled ones (still testable) and problems,
    each problem naming its file."""

    rules: tuple[NativeRule, ...]
    disabled: tuple[NativeRule, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)


def load_native(dirs: Iterable[Path]) -> NativeLoad:
    """Load every ``<name>.yml`` + ``<name>.py`` pair under ``dirs`` (recursively)."""
    loaded: list[NativeRule] = []
    problems: list[str] = []
    seen: dict[str, Path] = {}
    for yml in _metadata_files(dirs, problems):
        try:
            rule = _load_one(yml)
        except RuleError as exc:
            problems.append(str(exc))
            continue
        if rule.meta.id in seen:
            problems.append(f"{yml}: duplicate rule id {rule.meta.id!r} "
                            f"(also {seen[rule.meta.id]})")
            continue
        seen[rule.meta.id] = yml
        loaded.append(rule)
    return NativeLoad(rules=tuple(r for r in loaded if r.spec.enabled),
                      disabled=tuple(r for r in loaded if not r.spec.enabled),
                      problems=tuple(problems))


def load_pack() -> NativeLoad:
    """The default pack's native rules."""
    return load_native([PACK_DIR])


def _metadata_files(dirs: Iterable[Path], problems: list[str]) -> list[Path]:
    ymls: list[Path] = []
    for root in dirs:
        if not root.is_dir():
            problems.append(f"{root}: not a directory")
            continue
        ymls.extend(sorted(root.rglob("*.yml")))
        for py in sorted(root.rglob("*.py")):
            if not py.name.startswith("_") and not py.with_suffix(".yml").exists():
                problems.append(f"{py}: no metadata file {py.with_suffix('.yml').name}")
    return ymls


def _load_one(yml: Path) -> NativeRule:
    try:
        raw = yaml.safe_load(yml.read_text(encoding="utf-8"))
        spec = RuleFile.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise RuleError(f"{yml}: cannot read: {exc}") from exc
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
                           for e in exc.errors())
        raise RuleError(f"{yml}: {errors}") from exc
    module = _import(yml.with_suffix(".py"))
    index = _index(yml, spec)
    meta = RuleMeta(id=spec.id, title=spec.title, severity=spec.severity,
                    source=f"native:{yml.stem}@{spec.version}", tags=tuple(spec.tags),
                    threshold=spec.threshold, dedup_period_ms=spec.dedup_period_minutes * 60_000,
                    index=index, description=spec.description.strip())
    return NativeRule(meta, spec, module, yml.with_suffix(".py"))


def _index(yml: Path, spec: RuleFile) -> dict[str, frozenset[str]] | None:
    if spec.event_names and spec.index:
        raise RuleError(f"{yml}: give event_names or index, not both")
    if spec.event_names:
        return {"eventName": frozenset(n.casefold() for n in spec.event_names)}
    if spec.index:
        if len(spec.index) != 1 or not next(iter(spec.index.values())):
            raise RuleError(f"{yml}: index names one field and at least one value")
        path, values = next(iter(spec.index.items()))
        return {path: frozenset(v.casefold() for v in values)}
    return None


def _import(py: Path) -> ModuleType:
    if not py.exists():
        raise RuleError(f"{py.with_suffix('.yml')}: no module {py.name}")
    # A name unique per file: two directories may hold rules with the same stem.
    name = "trailpipe_native_rule_" + "".join(c if c.isalnum() else "_" for c in str(py))
    spec = importlib.util.spec_from_file_location(name, py)
    if spec is None or spec.loader is None:
        raise RuleError(f"{py}: cannot import")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # any import failure is the rule's problem
        raise RuleError(f"{py}: import failed: {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(module, "detect", None)):
        raise RuleError(f"{py}: no detect(event) function")
    return module
