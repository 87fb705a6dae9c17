"""``trailpipe rules list|lint|test|eval``: the rules, offline (no Kafka).

Which rules: ``list`` and ``lint`` take the configured rules (``[alerter]``: the default pack
unless ``default_pack = false``, plus ``sigma_paths``/``native_paths``) and any ``--rules
PATH``. ``test PATH...`` and ``eval --rules PATH...`` take just the rules named (a hunt or a
test run of one's own rules), or the configured rules when none are named. ``--pack`` /
``--no-pack`` includes or leaves out the default pack in every case. A path is a Sigma or
native rule file or a directory of either or both (see :mod:`pipeline.cli.rules_load`).

Exit codes: 0 success; 1 ``lint`` found an error or ``test`` a failure; 2 bad usage or config:
a missing path, or (``eval``) rules that fail to load.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.cli.common import ConfigOpt, build_config, fail
from pipeline.config import Config

if TYPE_CHECKING:  # the rule engines (pySigma) load only when a rules command runs
    from pipeline.cli.rules_load import Selection
    from pipeline.rules.evaluate import Evaluator, Match

app = typer.Typer(help="List, lint, test and evaluate Sigma and native rules, offline.",
                  no_args_is_help=True)

RulesOpt = Annotated[list[Path] | None, typer.Option(
    "--rules", help="Sigma or native rule file or directory (repeatable).")]
PackOpt = Annotated[bool | None, typer.Option(
    "--pack/--no-pack", help="Include the default pack (default: alerter.default_pack, true "
    "unless configured otherwise; for test PATH and eval --rules: no).", show_default=False)]
PROGRESS_EVERY_S = 5.0


def _select(config: Path | None, paths: list[Path], *, configured: bool,
            pack: bool | None) -> tuple[Config, Selection]:
    from pipeline.cli.rules_load import select

    cfg = build_config(config)
    use_pack = cfg.alerter.default_pack if pack is None and configured else bool(pack)
    selection = select(cfg.alerter, paths, configured=configured, pack=use_pack)
    if selection.missing:
        fail(2, [f"trailpipe: {p}: no such file or directory" for p in selection.missing])
    return cfg, selection


@app.command("list")
def list_cmd(config: ConfigOpt = None, rules: RulesOpt = None, pack: PackOpt = None,
             as_json: Annotated[bool, typer.Option(
                 "--json", help="One JSON object per line instead of a table.")] = False) -> None:
    """Every loaded rule and correlation: id, kind, severity, title, source and index."""
    from pipeline.cli.rules_report import list_rows, print_table

    _, selection = _select(config, rules or [], configured=True, pack=pack)
    rows = list_rows(selection.ruleset)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
    else:
        print_table(rows)
    if selection.ruleset.problems:
        typer.echo(f"trailpipe: {len(selection.ruleset.problems)} rule files could not be "
                   "loaded; see `trailpipe rules lint`", err=True)


@app.command("lint")
def lint_cmd(config: ConfigOpt = None, rules: RulesOpt = None, pack: PackOpt = None) -> None:
    """Every problem in the rules, one line each with its file; exit 1 on any error.

    Errors: rules that do not load (bad modifiers, unresolved correlation references,
    duplicate ids), fields that are not CloudTrail's or cannot be reached, rules that can
    never match. Warnings: rules not indexed by eventName/eventSource (tested against every
    event), native rules without tests, disabled ids that name no rule."""
    from pipeline.cli.rules_report import lint_findings

    cfg, selection = _select(config, rules or [], configured=True, pack=pack)
    findings = lint_findings(selection, cfg.alerter.disabled)
    for level, line in findings:
        typer.echo(f"{level}: {line}")
    errors = sum(level == "error" for level, _ in findings)
    ruleset = selection.ruleset
    typer.echo(f"{errors} errors, {len(findings) - errors} warnings "
               f"({len(ruleset.rules)} rules, {len(ruleset.correlations)} correlations)",
               err=True)
    if errors:
        raise typer.Exit(1)


@app.command("test")
def test_cmd(paths: Annotated[list[Path] | None, typer.Argument(
                 help="Rule files or directories; default: the configured rules.")] = None,
             config: ConfigOpt = None, pack: PackOpt = None) -> None:
    """Run every rule's tests, pytest-style; exit 1 on any failure.

    Native rules: the tests of each .yml (a CloudTrail record and whether the rule must
    match). Sigma has no test format: each Sigma rule and correlation is tested by loading
    and linting it. A rule file that does not load is an error."""
    from pipeline.cli.rules_report import test_outcomes

    started = time.monotonic()
    _, selection = _select(config, paths or [], configured=not paths, pack=pack)
    outcomes = test_outcomes(selection)
    for outcome in outcomes:
        if outcome.status != "ERROR":
            typer.echo(f"{outcome.name} {outcome.status}")
    failures = [o for o in outcomes if o.status != "PASSED"]
    if failures:
        typer.echo("=== short test summary info ===")
        for outcome in failures:
            typer.echo(f"{outcome.status} {outcome.name} - {outcome.reason}")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("PASSED", "FAILED", "ERROR")}
    summary = f"{counts['PASSED']} passed, {counts['FAILED']} failed"
    if counts["ERROR"]:
        summary += f", {counts['ERROR']} errors"
    typer.echo(f"{summary} in {time.monotonic() - started:.2f}s")
    if failures:
        raise typer.Exit(1)


@app.command("eval")
def eval_cmd(files: Annotated[list[Path] | None, typer.Argument(
                 help="CloudTrail JSON files or directories (as `events encode` takes: "
                 "{\"Records\": [...]}, JSON lines, .gz); none or '-' reads stdin.")] = None,
             rules: RulesOpt = None, config: ConfigOpt = None, pack: PackOpt = None,
             grace_ms: Annotated[int | None, typer.Option(
                 "--grace-ms", min=0, help="Lateness allowed in event time (default: "
                 "alerter.grace_ms in the config).")] = None) -> None:
    """Evaluate rules over CloudTrail JSON files offline (a retro-hunt).

    Records are fed in file order. One JSON line per match on stdout: {"rule_id", "title",
    "eventID", "severity"}; a rule with a threshold reports the event that reaches it, and a
    correlation the event that fires it, both with "eventIDs" (the window's events). Without
    --rules: the configured rules. Bad records are reported on stderr (file:line) and
    skipped; exit 0 when the evaluation ran, 2 for a missing file or rules that fail to load
    (all listed)."""
    from pipeline.rules.evaluate import Evaluator

    inputs = _input_files(files or [])
    cfg, selection = _select(config, rules or [], configured=not rules, pack=pack)
    ruleset = selection.ruleset
    if ruleset.problems:
        fail(2, ["trailpipe: rules failed to load:", *(f"  - {p}" for p in ruleset.problems)])
    if not ruleset.rules:
        fail(2, ["trailpipe: no rules to evaluate"])
    evaluator = Evaluator(ruleset, max_keys=cfg.alerter.max_state_keys,
                          grace_ms=cfg.alerter.grace_ms if grace_ms is None else grace_ms)
    started = time.monotonic()
    bad = _run(evaluator, inputs)
    _summary(evaluator.stats(), bad, len(inputs), selection, time.monotonic() - started)


def _run(evaluator: Evaluator, inputs: list[Path]) -> int:
    """Feed every record to ``evaluator``, matches to stdout as JSON lines, bad records and
    progress to stderr; the number of bad records."""
    bad = 0
    last_progress_s = time.monotonic()
    for location, record, error in _records(inputs):
        try:
            if record is None:
                raise ValueError(error)
            _print(evaluator.feed(record))
        except ValueError as exc:
            bad += 1
            typer.echo(f"{location}: {exc}", err=True)
        if time.monotonic() - last_progress_s >= PROGRESS_EVERY_S:
            last_progress_s = time.monotonic()
            stats = evaluator.stats()
            typer.echo(f"rules eval: {stats['records']} records, {stats['matches']} matches",
                       err=True)
    _print(evaluator.finish())
    sys.stdout.flush()
    return bad


def _print(matches: list[Match]) -> None:
    for match in matches:
        sys.stdout.write(json.dumps(match.as_json(), ensure_ascii=False) + "\n")


def _input_files(files: list[Path]) -> list[Path]:
    """Every input file (directories searched); exit 2 listing paths that do not exist."""
    from producers.files import find_files

    if not files or files == [Path("-")]:
        return [Path("-")]
    missing = [f for f in files if not f.exists()]
    if missing:
        fail(2, [f"trailpipe: {f}: no such file or directory" for f in missing])
    return [file for root in files for file in find_files(root)]


def _records(inputs: list[Path]) -> Iterator[tuple[str, dict[str, object] | None, str]]:
    """(location, record or None, error) for every record of every input, in order."""
    from producers.files import parse_bytes, read_file

    for path in inputs:
        raws = (parse_bytes(sys.stdin.buffer.read(), "<stdin>") if path == Path("-")
                else read_file(path))
        for raw in raws:
            yield raw.location, raw.value, raw.error or ""


def _summary(stats: dict[str, int], bad: int, files: int, selection: Selection,
             elapsed_s: float) -> None:
    ruleset = selection.ruleset
    line = (f"rules eval: {stats['records']} records from {files} files, {bad} invalid; "
            f"{len(ruleset.rules)} rules, {len(ruleset.correlations)} correlations; "
            f"{stats['matches']} matches in {elapsed_s:.2f}s")
    extra = [f"{stats[k]} {k.replace('_', ' ')}" for k in ("late_dropped", "evicted",
                                                              "rule_errors") if stats[k]]
    typer.echo(line + (f" ({', '.join(extra)})" if extra else ""), err=True)
    if stats["late_dropped"]:
        typer.echo("rules eval: late hits are dropped as the alerter would drop them; for "
                   "input out of event-time order, raise --grace-ms", err=True)
