"""Sigma rules on CloudTrail: pySigma parses, our compiled matcher evaluates.

- :func:`load_sigma` loads rule files into :class:`CompiledSigmaRule` objects (the
  :class:`pipeline.rules.model.Rule` protocol) and correlation rules into
  :class:`pipeline.rules.model.CorrelationSpec`, naming every file it could not use;
- :func:`lint_sigma` reports what loads but cannot work (unknown fields, unreachable rules).

Matching semantics are documented in :mod:`.values` (values, modifiers) and :mod:`.access`
(field paths, JSON-text members, lists).
"""

from pipeline.rules.sigma.lint import lint_sigma
from pipeline.rules.sigma.loader import CompiledSigmaRule, SigmaLoad, load_sigma

__all__ = ["CompiledSigmaRule", "SigmaLoad", "lint_sigma", "load_sigma"]
