"""Which rules a ``trailpipe rules`` command runs: the configured ones and the paths a user
names, Sigma and native told apart by content.

A path is a file or a directory (searched recursively). A ``<name>.yml`` with a sibling
``<name>.py`` (or that ``.py``) is a native rule; any other ``.yml``/``.yaml`` is Sigma. A
directory may hold both. Loading never raises: every problem (with its file) is collected,
and a file is reported by the loader of its own kind only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.rules.config import AlerterConfig
from pipeline.rules.native.load import PACK_DIR, NativeLoad, NativeRule, load_native
from pipeline.rules.ruleset import SIGMA_PACK_DIR, RuleSet, merge_loads, rule_dirs
from pipeline.rules.sigma.loader import SigmaLoad, load_sigma

_YAML = (".yml", ".yaml")


@dataclass(slots=True)
class Selection:
    """Rules as loaded, per engine (for lint and test) and merged (for list and eval).
    ``sigma_files`` maps a Sigma rule's ``source`` (``sigma:<relative path>``) to its file;
    ``missing`` are named paths that do not exist."""

    sigma: SigmaLoad
    native: NativeLoad
    ruleset: RuleSet
    sigma_files: dict[str, Path] = field(default_factory=dict)
    missing: list[Path] = field(default_factory=list)


@dataclass(slots=True)
class _Sources:
    sigma: list[Path] = field(default_factory=list)
    native_dirs: list[Path] = field(default_factory=list)
    native_files: list[Path] = field(default_factory=list)
    """Single native rules (their ``.yml``), loaded from their directory and picked out."""
    foreign: set[str] = field(default_factory=set)
    """Files one loader sees but the other owns: their problems are not reported twice."""


def is_native(yml: Path) -> bool:
    """A rule metadata file with its module beside it."""
    return yml.suffix in _YAML and yml.with_suffix(".py").is_file()


def _classify(path: Path, out: _Sources) -> None:
    if path.is_file():
        if path.suffix == ".py" or is_native(path):
            out.native_files.append(path.with_suffix(".yml"))
        else:
            out.sigma.append(path)
        return
    ymls = sorted(p for p in path.rglob("*") if p.suffix in _YAML and p.is_file())
    native = [p for p in ymls if is_native(p)]
    if native:
        out.native_dirs.append(path)
        out.foreign.update(str(p) for p in ymls if p not in native)
    if len(native) < len(ymls):
        out.sigma.append(path)
        out.foreign.update(str(p) for p in native)


def select(alerter: AlerterConfig, paths: Sequence[Path], *, configured: bool,
           pack: bool) -> Selection:
    """Load the configured rule paths (when ``configured``), the default pack (when ``pack``)
    and ``paths``; disabled ids (``[alerter] disabled``) are left out of the merged set."""
    if configured:
        sigma_dirs, native_dirs = rule_dirs(alerter.model_copy(update={"default_pack": pack}))
    else:
        sigma_dirs, native_dirs = ([SIGMA_PACK_DIR], [PACK_DIR]) if pack else ([], [])
    sources = _Sources(sigma=list(sigma_dirs), native_dirs=list(native_dirs))
    missing = [p for p in paths if not p.exists()]
    for path in paths:
        if path.exists():
            _classify(path, sources)
    sigma = load_sigma(sources.sigma)
    native = _load_native(sources)
    sigma_problems = [p for p in sigma.problems if not _about(p, sources.foreign)]
    sigma = SigmaLoad(sigma.rules, sigma.correlations, sigma_problems)
    ruleset = merge_loads(sigma, native, alerter.disabled)
    return Selection(sigma, native, ruleset, _sigma_files(sources.sigma), missing)


def _about(problem: str, files: Iterable[str]) -> bool:
    return any(problem.startswith(f"{f}: ") for f in files)


def _load_native(sources: _Sources) -> NativeLoad:
    """Native rules of whole directories, plus single rules picked out of theirs."""
    whole = load_native(sources.native_dirs)
    rules, disabled = list(whole.rules), list(whole.disabled)
    problems = [p for p in whole.problems if not _about(p, sources.foreign)]
    for yml in sources.native_files:
        module = str(yml.with_suffix(".py"))
        mine = [str(yml), module]
        load = load_native([yml.parent])
        rules.extend(r for r in load.rules if str(r.path) == module)
        disabled.extend(r for r in load.disabled if str(r.path) == module)
        problems.extend(p for p in load.problems if _about(p, mine))
    return NativeLoad(tuple(_unique(rules)), tuple(_unique(disabled)), tuple(problems))


def _unique(rules: Iterable[NativeRule]) -> list[NativeRule]:
    """Each rule file once (a rule named twice, or by a directory and by itself)."""
    return list({str(r.path): r for r in rules}.values())


def _sigma_files(roots: Iterable[Path]) -> dict[str, Path]:
    """``sigma:<source>`` -> file, as :func:`load_sigma` names sources (the first root wins)."""
    out: dict[str, Path] = {}
    for root in roots:
        if root.is_file():
            out.setdefault(f"sigma:{root.name}", root)
        elif root.is_dir():
            for file in sorted(p for p in root.rglob("*") if p.suffix in _YAML):
                out.setdefault(f"sigma:{file.relative_to(root).as_posix()}", file)
    return out
