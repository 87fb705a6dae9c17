"""The :class:`RuleMeta` of a parsed Sigma rule or correlation rule."""

from __future__ import annotations

from collections.abc import Mapping

from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

from pipeline.rules.model import RuleMeta

_SEVERITY = {"informational": "info", "low": "low", "medium": "medium", "high": "high",
             "critical": "critical"}


def rule_meta(rule: SigmaRule | SigmaCorrelationRule, source: str,
              index: Mapping[str, frozenset[str]] | None) -> RuleMeta:
    """Sigma ``level`` becomes the severity (``informational`` is ``info``; no level reads as
    ``medium``); tags are ``namespace.name``; ``source`` is the file relative to the loaded
    directory. The caller checked that the rule has an id."""
    level = str(rule.level) if rule.level is not None else "medium"
    return RuleMeta(
        id=str(rule.id), title=rule.title, severity=_SEVERITY.get(level, "medium"),
        source=f"sigma:{source}", tags=tuple(str(t) for t in rule.tags), index=index,
        description=rule.description or "",
    )
