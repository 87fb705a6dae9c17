"""``trailpipe report`` as a command (mounted on its own Typer app, as the lead registers it in
the CLI): bad arguments exit 2 with a one-line reason before any data is read; an empty lake
gives a page whose sections say "no data" and the JSON summary; a bad alerts file exits 1."""

from __future__ import annotations

import json
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


def _report(tmp_path: Path, *extra: str) -> tuple[int, str, Path]:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(APP, [
        "report", "--from", "2025-11-27", "--to", "2025-11-28", "--out", str(out),
        "--lake", f"file://{tmp_path / 'lake'}", "--no-kafka", *extra])
    return result.exit_code, result.output, out


def test_an_empty_lake_gives_a_page_of_no_data_sections_and_a_summary(tmp_path: Path) -> None:
    code, output, out = _report(tmp_path)
    assert code == 0, output
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["calls"] == 0 and summary["charts"] == 0
    assert summary["sections"]["calls"] == {"note": "no data in this window"}
    assert summary["sections"]["alerts"] == {
        "note": "alerts not read (--no-kafka and no --alerts FILE)"}
    assert summary["sections"]["insights"] == {"note": "insights not read (--no-kafka)"}
    assert "(0 event objects, no aggregates yet)" in out.read_text()


def test_an_alerts_file_that_is_not_alerts_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "alerts.jsonl"
    bad.write_text("not json\n")
    code, output, out = _report(tmp_path, "--alerts", str(bad))
    assert code == 1 and "alerts.jsonl:1: not JSON" in output and not out.exists()
