"""``trailpipe report``'s argument checks: exit 2 and a one-line reason, before any data is
read (the command mounted on its own Typer app, as the lead registers it in the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pipeline.cli.report import report

APP = typer.Typer()
APP.command("report")(report)
APP.command("noop")(lambda: None)  # two commands: "report" stays a subcommand


@pytest.mark.parametrize(("args", "reason"), [
    (["--from", "2025-11-27T01:00Z", "--to", "2025-11-27T00:00Z"], "--from must be before"),
    (["--from", "yesterday", "--to", "2025-11-27T00:00Z"], "--from 'yesterday' is neither"),
    (["--from", "2025-11-27", "--to", "2025-11-28", "--top", "0"], "--top must be at least 1"),
])
def test_bad_arguments_exit_2_with_the_reason(args: list[str], reason: str,
                                              tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(APP, ["report", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert reason in result.output
    assert not out.exists()


def test_an_out_directory_that_does_not_exist_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(APP, ["report", "--from", "2025-11-27", "--to", "2025-11-28",
                                      "--out", str(tmp_path / "missing" / "r.html")])
    assert result.exit_code == 2 and "does not exist" in result.output
